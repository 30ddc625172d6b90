package join

import (
	"context"
	"errors"
	"net/http"

	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/enclave/internal/servicekeys"
)

// Joiner is a replica that joins a running service.
type Joiner struct {
	// Attester makes the joiner's attestation document.
	Attester attest.Attester
	// ReplicaID, RaftAddr (HOST:PORT) and APIURL (http or https) are what
	// the joiner attests and the service records.
	ReplicaID, RaftAddr, APIURL string
	// Policy is how the joiner verifies the member's identity document
	// (its Nonce is always set to the challenge). Nil: the joiner's own
	// platform, root (pinned for SIMULATED) and measurements (Nitro: PCR0,
	// 1 and 2; SIMULATED: PCR0).
	Policy *attest.Policy
	// HTTPClient sends the requests; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// Join asks the member at memberURL (its API base URL) for the service
// keys: it fetches a challenge, attests, sends the join request and checks
// that the member's identity document, over the same nonce, binds the
// keys it received. It follows up to MaxRedirects not_leader redirects.
// An error answer of the member is returned as (wrapping) an *api.Error;
// no_leader is one the caller may retry.
func (j *Joiner) Join(ctx context.Context, memberURL string) (*servicekeys.Keys, error) {
	return nil, errors.New("join: not implemented")
}
