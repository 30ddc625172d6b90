package node

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/election/outcome"
)

// A lease refusal is recognised by its code, whatever its message says,
// and nothing else is taken for one: by the refusal code the runtime
// passes (sealed or plaintext input), or, from a runtime that does not
// list the code, by the function's own message (plaintext input).
func TestIsLeaseRefusal(t *testing.T) {
	failed := func(msg string) *api.Error {
		return &api.Error{Status: http.StatusUnprocessableEntity, Code: api.CodeFunctionFailed, Kind: "failed", Message: msg}
	}
	refused := func(code, msg string) error {
		e := failed(msg)
		e.Refusal = code
		return e
	}
	const sealedText = "function refused its input (lease_not_renewed): the submitter leads the current term, but a majority of views does not see it alive, so its lease is not renewed; details withheld: the input was sealed"
	refusal := outcome.Refuse(outcome.LeaseNotRenewed, "leader %q of term %d is not alive by a majority of views", "n1", 3).Error()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"sealed", refused(api.RefusalLeaseNotRenewed, sealedText), true},
		{"plaintext", refused(api.RefusalLeaseNotRenewed, "function refused its input (lease_not_renewed): leader \"n1\" of term 3 is not alive by a majority of views"), true},
		{"wrapped", fmt.Errorf("submit: %w", refused(api.RefusalLeaseNotRenewed, sealedText)), true},
		{"function's message", failed(refusal), true},
		{"wrapped function's message", fmt.Errorf("submit: %w", failed(refusal)), true},
		{"another code, sealed", refused(api.RefusalViewRefused, "function refused its input (view_refused): the submission's view does not count; details withheld: the input was sealed"), false},
		{"another code, its message naming the lease", refused(api.RefusalViewRefused, refusal), false},
		{"another code's message", failed(outcome.Refuse(outcome.ViewRefused, "lease not renewed? no: seq 3 is not above 4").Error()), false},
		{"state unreadable", failed(outcome.Refuse(outcome.StateUnreadable, "lease_not_renewed").Error()), false},
		{"old JSON", failed(`{"code":"lease_not_renewed","message":"m"}`), false},
		{"plain text", failed("lease not renewed: leader is not alive by a majority of views"), false},
		{"sealed failure", failed("function reported an error (its message is withheld: the input was sealed)"), false},
		{"not a function failure", &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Refusal: api.RefusalLeaseNotRenewed, Message: refusal}, false},
		{"not from the runtime", errors.New(refusal), false},
	} {
		if got := IsLeaseRefusal(tc.err); got != tc.want {
			t.Errorf("%s: IsLeaseRefusal = %v, want %v", tc.name, got, tc.want)
		}
	}
}
