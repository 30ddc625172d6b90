package join

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/enclave/internal/servicekeys"
)

// Policy is a member's join policy.
type Policy struct {
	// Attester is the member's own attester: its platform, PCRs and (for
	// SIMULATED) root are what a joiner must match.
	Attester attest.Attester
	// AllowPCRs lists further accepted measurements (the service's join
	// allowlist). A joiner matches an entry when every PCR the entry names
	// equals the joiner's; an empty entry matches nothing. Nil: only the
	// member's own measurements.
	AllowPCRs []map[int][]byte
	// AllowDebug accepts Nitro debug enclaves (PCR0..2 zero). For
	// development only.
	AllowDebug bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Member admits joiners on behalf of a running replica. It is safe for
// concurrent use.
type Member struct {
	policy       Policy
	keys         *servicekeys.Keys
	selfIdentity func(ctx context.Context, nonce []byte) ([]byte, error)

	mu         sync.Mutex
	challenges map[[NonceSize]byte]time.Time // nonce -> expiry
	ref        *reference                    // the member's own claims, once known
}

// reference is what a joiner must match: the member's own platform, root
// and measurements.
type reference struct {
	platform string
	root     [32]byte
	pcrs     map[int][]byte // the PCRs compared: 0 (SIMULATED) or 0, 1, 2 (Nitro)
}

// NewMember returns a member that admits joiners under p and seals keys to
// them. selfIdentity returns the member's identity attestation document over
// a nonce: public_key the receipt key and user_data
// api.IdentityUserDataReplica(receipt_key, hpke_key, member_replica_id).
func NewMember(p Policy, keys *servicekeys.Keys, selfIdentity func(ctx context.Context, nonce []byte) ([]byte, error)) *Member {
	return &Member{
		policy:       p,
		keys:         keys,
		selfIdentity: selfIdentity,
		challenges:   make(map[[NonceSize]byte]time.Time),
	}
}

func (m *Member) now() time.Time {
	if m.policy.Now == nil {
		return time.Now()
	}
	return m.policy.Now()
}

// Challenge returns a fresh 32-byte nonce that one join request may use
// within ChallengeTTL. It fails with ErrBusy when MaxChallenges are
// outstanding.
func (m *Member) Challenge() ([]byte, error) {
	return nil, errors.New("join: not implemented")
}

// Admit checks req (see the package documentation for the order of the
// checks) and, if the joiner may join, returns the service keys sealed to
// it with the member's identity document, and what the joiner attested.
// A refusal wraps ErrRefused; other errors are the member's own failures.
func (m *Member) Admit(ctx context.Context, req *Request) (*Response, *Admission, error) {
	return nil, nil, errors.New("join: not implemented")
}

var (
	_ = bytes.Equal
	_ = rand.Read
	_ = fmt.Errorf
)
