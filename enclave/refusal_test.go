package enclave_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
)

// A refusal's code and its fixed text pass for sealed inputs; nothing the
// function wrote besides the code does.
func TestRefusalOfSealedInput(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	sealed := env.Client(client.Options{})
	plain := env.Client(client.Options{Plaintext: true})

	// Numeric node IDs, as the original demo sent them.
	res, err := sealed.Run(ctx, ref, []byte(`{"cluster":"demo","node_list":[1,2]}`))
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Leader  string
		Members []string
	}
	if err := json.Unmarshal(res.Output, &out); err != nil || out.Leader != "2" || strings.Join(out.Members, ",") != "1,2" {
		t.Fatalf("output %s: %v", res.Output, err)
	}

	in := []byte(`{"cluster":"demo","node_list":[1,7.25]}`)
	_, err = sealed.Run(ctx, ref, in)
	ae := wantRefusal(t, err, api.RefusalInvalidValue)
	if strings.Contains(ae.Message, "7.25") || ae.Log != "" || !strings.Contains(ae.Message, api.RefusalTexts[api.RefusalInvalidValue]) || !strings.Contains(ae.Message, "withheld") {
		t.Fatalf("sealed refusal says %q (log %q): want the code's fixed text only", ae.Message, ae.Log)
	}
	_, err = plain.Run(ctx, ref, in)
	ae = wantRefusal(t, err, api.RefusalInvalidValue)
	if !strings.Contains(ae.Message, "node_list[1]: 7.25 is not a node ID: it has a fraction") {
		t.Fatalf("plaintext refusal says %q", ae.Message)
	}
	_, err = sealed.Run(ctx, ref, []byte(`{"node_list":[1,"1"]}`))
	wantRefusal(t, err, api.RefusalDuplicateValue)

	// A command module refuses with its last line of stderr: here the
	// input itself, echoed. Only listed codes pass, never the rest.
	b, _ := bundle.New(wasmtest.LogInput(1), nil)
	d, err := sealed.Deploy(ctx, b, "")
	if err != nil {
		t.Fatal(err)
	}
	echo := client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: env.Owner}
	_, err = sealed.Run(ctx, echo, []byte("vouch-refusal:not_permitted: secret"))
	if ae := wantRefusal(t, err, api.RefusalNotPermitted); strings.Contains(ae.Message, "secret") {
		t.Fatalf("sealed refusal leaks: %q", ae.Message)
	}
	for _, msg := range []string{"vouch-refusal:secret_code: secret", "secret", "vouch-refusal:not_permitted: x\nsecret"} {
		_, err = sealed.Run(ctx, echo, []byte(msg))
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Refusal != "" || strings.Contains(ae.Message, "secret") || ae.Status != http.StatusUnprocessableEntity {
			t.Fatalf("input %q: error %v (refusal %q), want a withheld failure", msg, err, ae.Refusal)
		}
	}
}

func wantRefusal(t *testing.T, err error, code string) *api.Error {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeFunctionFailed || ae.Refusal != code || ae.Status != http.StatusUnprocessableEntity {
		t.Fatalf("error = %v, want a refusal %q", err, code)
	}
	return ae
}
