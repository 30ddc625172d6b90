package enclave_test

import (
	"net/http"
	"testing"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/seal"
)

// Session messages over raw HTTP: one opens once, only at its own
// function's endpoint and only in the boot it was sealed for.
func TestSessionMessages(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	c := env.Client(client.Options{})
	id, err := c.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := seal.NewSession(id.HPKEKey, ref.ID, ref.Checksum, id.BootID)
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{api.HeaderChecksum: ref.Checksum, "Content-Type": api.ContentTypeSession}
	url := env.URL + "/v1/functions/" + ref.ID + "/run"
	msg, _, err := s.Seal([]byte(leaderInput), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp := post(t, url, ref.Token, headers, msg); resp.StatusCode != http.StatusOK {
		wantError(t, resp, http.StatusOK, "")
	}
	wantError(t, post(t, url, ref.Token, headers, msg), http.StatusBadRequest, api.CodeReplay)
	// The same bytes as a single-shot input do not open.
	single := map[string]string{api.HeaderChecksum: ref.Checksum, "Content-Type": api.ContentTypeSealed}
	msg2, _, _ := s.Seal([]byte(leaderInput), nil)
	wantError(t, post(t, url, ref.Token, single, msg2), http.StatusBadRequest, api.CodeSealedInput)
	// A session for this function does not open at another's endpoint.
	other := env.DeployLeader() // the same bundle again: another ID
	if other.ID == ref.ID {
		t.Fatal("a second deploy got the same function ID")
	}
	msg3, _, _ := s.Seal([]byte(leaderInput), nil)
	wantError(t, post(t, env.URL+"/v1/functions/"+other.ID+"/run", other.Token,
		map[string]string{api.HeaderChecksum: other.Checksum, "Content-Type": api.ContentTypeSession}, msg3), http.StatusBadRequest, api.CodeSealedInput)
	// After a restart the session's messages belong to an old boot.
	msg4, _, _ := s.Seal([]byte(leaderInput), nil)
	env = env.Restart()
	wantError(t, post(t, env.URL+"/v1/functions/"+ref.ID+"/run", ref.Token, headers, msg4), http.StatusConflict, api.CodeStaleBoot)
}
