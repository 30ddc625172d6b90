package join

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
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
	var n [NonceSize]byte
	if _, err := rand.Read(n[:]); err != nil {
		return nil, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.challenges) >= MaxChallenges {
		m.pruneLocked(now)
	}
	if len(m.challenges) >= MaxChallenges {
		return nil, fmt.Errorf("%w (%d, each kept %s)", ErrBusy, MaxChallenges, ChallengeTTL)
	}
	m.challenges[n] = now.Add(ChallengeTTL)
	return n[:], nil
}

// pruneLocked forgets expired challenges.
func (m *Member) pruneLocked(now time.Time) {
	for n, exp := range m.challenges {
		if !now.Before(exp) {
			delete(m.challenges, n)
		}
	}
}

// consume removes nonce from the outstanding challenges and reports
// whether it was there and not expired.
func (m *Member) consume(nonce []byte) bool {
	if len(nonce) != NonceSize {
		return false
	}
	n := [NonceSize]byte(nonce)
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.challenges[n]
	if !ok {
		return false
	}
	delete(m.challenges, n)
	return now.Before(exp)
}

// outstanding returns how many challenges are held.
func (m *Member) outstanding() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.challenges)
}

// reference returns the member's own platform, root and measurements,
// learnt once from a document of its own attester.
func (m *Member) reference(ctx context.Context) (*reference, error) {
	m.mu.Lock()
	ref := m.ref
	m.mu.Unlock()
	if ref != nil {
		return ref, nil
	}
	a := m.policy.Attester
	if a == nil {
		return nil, errors.New("join: the member has no attester")
	}
	nonce := make([]byte, NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	doc, err := a.Attest(ctx, attest.Request{Nonce: nonce})
	if err != nil {
		return nil, fmt.Errorf("join: the member cannot attest itself: %w", err)
	}
	simulated := a.Platform() == attest.PlatformSimulated
	// The member's own attester is trusted to give its own document; the
	// nonce is not checked so that a test attester may replay one.
	c, err := attest.Verify(doc, attest.Policy{AllowSimulated: simulated, AllowDebug: m.policy.AllowDebug, Now: m.policy.Now})
	if err != nil {
		return nil, fmt.Errorf("join: the member's own attestation does not verify: %w", err)
	}
	if c.Platform != a.Platform() {
		return nil, fmt.Errorf("join: the member's attester says platform %s but its document is %s", a.Platform(), c.Platform)
	}
	ref = &reference{platform: c.Platform, root: c.RootFingerprint, pcrs: comparedPCRs(c)}
	m.mu.Lock()
	if m.ref == nil {
		m.ref = ref
	}
	ref = m.ref
	m.mu.Unlock()
	return ref, nil
}

// comparedPCRs returns the PCRs of c that a joiner must match: PCR0 for a
// SIMULATED document (PCR1 and 2 are constants), PCR0, 1 and 2 for Nitro.
func comparedPCRs(c *attest.Claims) map[int][]byte {
	idx := []int{0, 1, 2}
	if c.Simulated {
		idx = idx[:1]
	}
	out := make(map[int][]byte, len(idx))
	for _, i := range idx {
		out[i] = bytes.Clone(c.PCRs[i])
	}
	return out
}

// pcrsMatch reports whether every PCR in want is present in got and equal.
func pcrsMatch(want, got map[int][]byte) bool {
	if len(want) == 0 {
		return false
	}
	for i, w := range want {
		g, ok := got[i]
		if !ok || !bytes.Equal(g, w) {
			return false
		}
	}
	return true
}

// refusal is an error of Admit: it wraps ErrRefused and, if not nil,
// the sentinel that names its cause.
type refusal struct {
	msg   string
	cause error
}

func (r *refusal) Error() string { return "join refused: " + r.msg }

func (r *refusal) Unwrap() []error {
	if r.cause == nil {
		return []error{ErrRefused}
	}
	return []error{ErrRefused, r.cause}
}

// refused returns a refusal whose cause (may be nil) errors.Is finds.
func refused(cause error, format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...), cause: cause}
}

// trim drops this package's prefix of an error message.
func trim(err error) string { return strings.TrimPrefix(err.Error(), "join: ") }

// Admit checks req (see the package documentation for the order of the
// checks) and, if the joiner may join, returns the service keys sealed to
// it with the member's identity document, and what the joiner attested.
// A refusal wraps ErrRefused; other errors are the member's own failures.
func (m *Member) Admit(ctx context.Context, req *Request) (*Response, *Admission, error) {
	if req == nil || len(req.Attestation) == 0 {
		return nil, nil, refused(ErrMalformed, "the join request has no attestation document")
	}
	ref, err := m.reference(ctx)
	if err != nil {
		return nil, nil, err
	}

	// 1. The document verifies, under the member's own root if SIMULATED.
	p := attest.Policy{AllowDebug: m.policy.AllowDebug, Now: m.policy.Now}
	if ref.platform == attest.PlatformSimulated {
		p.AllowSimulated = true
		p.RootFingerprint = ref.root[:]
	}
	c, err := attest.Verify(req.Attestation, p)
	if err != nil {
		if errors.Is(err, attest.ErrSimulated) {
			return nil, nil, refused(err, "the joiner's attestation is SIMULATED but this service runs on %s: %v", ref.platform, err)
		}
		return nil, nil, refused(err, "the joiner's attestation: %v", err)
	}
	// 2. Its nonce is an outstanding challenge, now consumed.
	if !m.consume(c.Nonce) {
		return nil, nil, refused(ErrChallenge, "the attestation's nonce is not an outstanding challenge of this member: unknown, expired (challenges last %s) or already used (a replayed document)", ChallengeTTL)
	}
	// 3. Same platform.
	if c.Platform != ref.platform {
		return nil, nil, refused(nil, "the joiner's attestation is from platform %s, this service runs on %s", c.Platform, ref.platform)
	}
	// 4. Same measurements, or allowlisted ones.
	if !m.measurementsAllowed(ref, c) {
		return nil, nil, refused(attest.ErrPCR, "the joiner's measurements (%s) are neither this member's (%s) nor in the service's join allowlist",
			describePCRs(c.PCRs, ref.pcrs), describePCRs(ref.pcrs, ref.pcrs))
	}
	// 5. An X25519 key to seal to.
	if len(c.PublicKey) != 32 {
		return nil, nil, refused(ErrMalformed, "the joiner's attested public_key is %d bytes, want a 32-byte X25519 key", len(c.PublicKey))
	}
	// 6. Who it is.
	a, err := parseUserData(c.UserData)
	if err != nil {
		return nil, nil, refused(err, "%s", trim(err))
	}

	sealed, err := sealKeys(c.PublicKey, a.ReplicaID, c.Nonce, m.keys)
	if err != nil {
		return nil, nil, refused(ErrMalformed, "the joiner's attested public_key: %v", err)
	}
	if m.selfIdentity == nil {
		return nil, nil, errors.New("join: the member has no identity attestation to answer with")
	}
	doc, err := m.selfIdentity(ctx, c.Nonce)
	if err != nil {
		return nil, nil, fmt.Errorf("join: the member cannot attest its identity: %w", err)
	}
	return &Response{SealedKeys: sealed, Attestation: doc}, &a, nil
}

// measurementsAllowed reports whether c's PCRs equal the member's own or
// match an allowlist entry.
func (m *Member) measurementsAllowed(ref *reference, c *attest.Claims) bool {
	if pcrsMatch(ref.pcrs, c.PCRs) {
		return true
	}
	for _, e := range m.policy.AllowPCRs {
		if pcrsMatch(e, c.PCRs) {
			return true
		}
	}
	return false
}

// describePCRs prints the PCRs of pcrs that idx names, as pcrN=hex.
func describePCRs(pcrs, idx map[int][]byte) string {
	var b []byte
	for i := 0; i < attest.MaxPCRs; i++ {
		if _, ok := idx[i]; !ok {
			continue
		}
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = fmt.Appendf(b, "pcr%d=%x", i, pcrs[i])
	}
	return string(b)
}
