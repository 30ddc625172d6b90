package enclave_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
)

// TestStrictRequestBodies: the runtime decodes every JSON body it is sent,
// and the vouch.json inside a deploy, as strict JSON: a field given twice,
// a name in another case or a null is refused, not read as the last value,
// matched to the field or read as empty.
func TestStrictRequestBodies(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	sum := ref.Checksum
	wrong := strings.Repeat("0", 64)
	mint := func(body string) *http.Response {
		return post(t, env.URL+"/v1/functions/"+ref.ID+"/tokens", env.Owner, map[string]string{"Content-Type": "application/json"}, []byte(body))
	}
	for _, tc := range []struct{ body, msg string }{
		{`{"FUNCTION_CHECKSUM":"` + sum + `"}`, `unknown field "FUNCTION_CHECKSUM"`},
		{`{"Function_Checksum":"` + sum + `"}`, `unknown field "Function_Checksum"`},
		{`{"function_checksum":"` + wrong + `","function_checksum":"` + sum + `"}`, `field "function_checksum" given twice`},
		{`{"function_checksum":"` + sum + `","function_checksum":"` + sum + `"}`, `field "function_checksum" given twice`},
		{`{"function_checksum":"` + sum + `","function_\u0063hecksum":"` + wrong + `"}`, `field "function_checksum" given twice`},
		{`{"function_checksum":"` + sum + `","FUNCTION_CHECKSUM":"` + wrong + `"}`, `unknown field "FUNCTION_CHECKSUM"`},
		{`null`, "null is not allowed"},
		{`{"function_checksum":null}`, "function_checksum: null is not allowed"},
		{`{"function_checksum":"` + sum + `","expiry":null}`, "expiry: null is not allowed"},
		{`{"function_checksum":"` + sum + `"} {}`, "trailing data"},
	} {
		e := wantError(t, mint(tc.body), http.StatusBadRequest, api.CodeBadRequest)
		if !strings.Contains(e.Message, tc.msg) {
			t.Errorf("token request %s: message %q, want it to contain %q", tc.body, e.Message, tc.msg)
		}
	}
	tok, err := env.Client(client.Options{}).MintToken(ctx, ref.ID, sum, time.Hour)
	if err != nil {
		t.Fatalf("a strict token request is still served: %v", err)
	}

	revoke := func(body string) *http.Response {
		return post(t, env.URL+"/v1/tokens/revoke", env.Owner, map[string]string{"Content-Type": "application/json"}, []byte(body))
	}
	for _, tc := range []struct{ body, msg string }{
		{`{"FUNCTION_TOKEN":"` + tok.FunctionToken + `"}`, `unknown field "FUNCTION_TOKEN"`},
		{`{"function_token":"x","function_token":"` + tok.FunctionToken + `"}`, `field "function_token" given twice`},
		{`{"function_token":null}`, "function_token: null is not allowed"},
	} {
		e := wantError(t, revoke(tc.body), http.StatusBadRequest, api.CodeBadRequest)
		if !strings.Contains(e.Message, tc.msg) {
			t.Errorf("revoke request %s: message %q, want it to contain %q", tc.body, e.Message, tc.msg)
		}
	}

	// A manifest a reviewer could misread is refused at deploy.
	for _, tc := range []struct{ manifest, msg string }{
		{`{"allow_plaintext_input": false, "allow_plaintext_input": true}`, `field "allow_plaintext_input" given twice`},
		{`{"ALLOW_PLAINTEXT_INPUT": true, "Limits": {"TIMEOUT": "300ms"}}`, `unknown field "ALLOW_PLAINTEXT_INPUT"`},
		{`{"limits": {"TIMEOUT": "300ms"}}`, `unknown field "TIMEOUT" in "limits"`},
		{`null`, "null is not allowed"},
		{`{"limits": null}`, "limits: null is not allowed"},
	} {
		e := wantError(t, deployRaw(t, env, mustEncodeWithManifest(wasmtest.Trap(), tc.manifest)), http.StatusBadRequest, api.CodeInvalidBundle)
		if !strings.Contains(e.Message, tc.msg) || !strings.Contains(e.Hint, "vouch.json") {
			t.Errorf("manifest %s: message %q, hint %q; want a message containing %q and a hint about vouch.json", tc.manifest, e.Message, e.Hint, tc.msg)
		}
	}
	fns, err := env.Client(client.Options{}).List(ctx)
	if err != nil || len(fns) != 1 || fns[0].FunctionID != ref.ID {
		t.Fatalf("functions after refused deploys: %+v, %v", fns, err)
	}
}
