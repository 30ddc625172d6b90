package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vouch-dev/vouch/api"
)

// The runtime's URLs: --enclave and $VOUCH_ENCLAVE take a comma-separated
// list; a reference gives its enclave_urls.
func TestClientFlagsURLs(t *testing.T) {
	cleanEnv(t)
	ref := &api.Ref{EnclaveURL: "http://a:1", EnclaveURLs: []string{"http://a:1", "http://b:1"}}
	for _, tc := range []struct {
		flag, env string
		ref       *api.Ref
		want      []string
	}{
		{"", "", nil, []string{"https://127.0.0.1:7070"}},
		{"", "", ref, []string{"http://a:1", "http://b:1"}},
		{"", "", &api.Ref{EnclaveURL: "http://c:1"}, []string{"http://c:1"}},
		{"", " http://e:1 , http://f:1,", ref, []string{"http://e:1", "http://f:1"}},
		{"http://x:1,http://y:1", "http://e:1", ref, []string{"http://x:1", "http://y:1"}},
		{"http://x:1", "", ref, []string{"http://x:1"}},
	} {
		t.Setenv("VOUCH_ENCLAVE", tc.env)
		cf := clientFlags{enclave: tc.flag}
		if got := cf.urls(tc.ref); !slices.Equal(got, tc.want) {
			t.Errorf("flag %q env %q: urls = %q, want %q", tc.flag, tc.env, got, tc.want)
		}
	}
}

// `vouch token -o json` lists the replicas the runtime reports, and `vouch
// run --ref` uses them: the first is down, the run goes to the next.
func TestTokenListsReplicas(t *testing.T) {
	cleanEnv(t)
	f := newRuntimeFixture(t, false)
	t.Setenv("VOUCH_OWNER_TOKEN", f.env.Owner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()

	// A stand-in for a replicated runtime's GET /v1/replicas in front of
	// a single real runtime.
	target, _ := url.Parse(f.env.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	var self string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/replicas" {
			fmt.Fprintf(w, `{"replicas":[{"id":"r1","api_url":%q},{"id":"r2","api_url":%q}],"leader":"r2"}`, self, dead)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer srv.Close()
	self = srv.URL

	out := filepath.Join(t.TempDir(), "ref.json")
	r := vouch(t, "token", f.ref.ID, "--function-checksum", f.ref.Checksum, "--enclave", srv.URL, "--out", out)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	ref, err := api.LoadRef(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{dead, srv.URL}; !slices.Equal(ref.EnclaveURLs, want) || ref.EnclaveURL != dead {
		t.Fatalf("reference lists %q (enclave_url %q), want %q, the leader first", ref.EnclaveURLs, ref.EnclaveURL, want)
	}
	r = vouch(t, "run", "--ref", out, leaderInput)
	if r.code != 0 {
		t.Fatalf("run with the first replica down:\n%s", r)
	}

	// A single runtime: enclave_url alone.
	r = vouch(t, "token", f.ref.ID, "--function-checksum", f.ref.Checksum, "--enclave", f.env.URL, "-o", "json")
	single, err := api.ParseRef([]byte(r.stdout))
	if r.code != 0 || err != nil || single.EnclaveURLs != nil || single.EnclaveURL != f.env.URL {
		t.Fatalf("reference to a single runtime (%v): %+v\n%s", err, single, r)
	}
}
