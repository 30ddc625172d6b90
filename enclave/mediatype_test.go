package enclave_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/seal"
)

// TestRunContentTypes: the run endpoint reads Content-Type as a media type
// (case-insensitive, parameters ignored). A sealed body is opened whatever
// the case of its type; an unknown, malformed or repeated type is refused
// with 415 unsupported_media_type instead of being run as plaintext.
func TestRunContentTypes(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	id, err := env.Client(client.Options{}).Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	url := env.URL + "/v1/functions/" + ref.ID + "/run"
	run := func(ctypes []string, body []byte) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ref.Token)
		for _, c := range ctypes {
			req.Header.Add("Content-Type", c)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	wantLeader := func(name string, resp *http.Response) {
		t.Helper()
		body, _ := io.ReadAll(resp.Body)
		var res api.RunResult
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &res) != nil || !bytes.Contains(res.Output, []byte(`"leader":"5002"`)) {
			t.Fatalf("%s: %d %s, want 200 and the leader's answer", name, resp.StatusCode, body)
		}
	}
	sealed := func() []byte {
		b, err := seal.SealInput(id.HPKEKey, ref.ID, ref.Checksum, []byte(leaderInput), &seal.InputOptions{BootID: id.BootID})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	for _, ct := range []string{"APPLICATION/VND.VOUCH.SEALED", "Application/Vnd.Vouch.Sealed", "application/vnd.vouch.sealed; charset=binary", "application/vnd.vouch.sealed ;x=\"y\""} {
		wantLeader(ct, run([]string{ct}, sealed()))
	}
	for _, ct := range []string{"", "application/octet-stream", "APPLICATION/OCTET-STREAM", "application/json", "text/plain; charset=utf-8"} {
		var ctypes []string
		if ct != "" {
			ctypes = []string{ct}
		}
		wantLeader("plaintext "+ct, run(ctypes, []byte(leaderInput)))
	}
	for _, tc := range []struct {
		ctypes []string
		body   []byte
		msg    string
	}{
		{[]string{"application/x-www-form-urlencoded"}, []byte(leaderInput), "is not one a run request takes"},
		{[]string{"application/vnd.vouch.sealedx"}, sealed(), "is not one a run request takes"},
		{[]string{"application/vnd.vouch.sealed+json"}, sealed(), "is not one a run request takes"},
		{[]string{"application/"}, sealed(), "malformed Content-Type"},
		{[]string{"application/vnd.vouch.sealed; charset"}, sealed(), "malformed Content-Type"},
		{[]string{"application/vnd.vouch.sealed, application/octet-stream"}, sealed(), "malformed Content-Type"},
		{[]string{api.ContentTypeSealed, api.ContentTypePlain}, sealed(), "2 Content-Type headers"},
		{[]string{"APPLICATION/OCTET-STREAM", api.ContentTypeSealed}, []byte(leaderInput), "2 Content-Type headers"},
	} {
		e := wantError(t, run(tc.ctypes, tc.body), http.StatusUnsupportedMediaType, api.CodeUnsupportedMedia)
		if !strings.Contains(e.Message, tc.msg) || !strings.Contains(e.Hint, api.ContentTypeSealed) {
			t.Errorf("%q: message %q, hint %q; want a message containing %q and a hint naming the types", tc.ctypes, e.Message, e.Hint, tc.msg)
		}
	}
	// Still serving.
	wantLeader("after the refusals", run([]string{api.ContentTypeSealed}, sealed()))
}
