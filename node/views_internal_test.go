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
// and nothing else is taken for one.
func TestIsLeaseRefusal(t *testing.T) {
	failed := func(msg string) error {
		return &api.Error{Status: http.StatusUnprocessableEntity, Code: api.CodeFunctionFailed, Kind: "failed", Message: msg}
	}
	refusal := outcome.Refuse(outcome.LeaseNotRenewed, "leader %q of term %d is not alive by a majority of views", "n1", 3).Error()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"refusal", failed(refusal), true},
		{"wrapped refusal", fmt.Errorf("submit: %w", failed(refusal)), true},
		{"another code", failed(outcome.Refuse(outcome.ViewRefused, "lease not renewed? no: seq 3 is not above 4").Error()), false},
		{"plain text", failed("lease not renewed: leader is not alive by a majority of views"), false},
		{"sealed input", failed("function reported an error (its message is withheld: the input was sealed)"), false},
		{"not a function failure", &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: refusal}, false},
		{"not from the runtime", errors.New(refusal), false},
	} {
		if got := IsLeaseRefusal(tc.err); got != tc.want {
			t.Errorf("%s: IsLeaseRefusal = %v, want %v", tc.name, got, tc.want)
		}
	}
}
