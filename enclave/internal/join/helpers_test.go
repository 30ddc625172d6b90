package join

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/enclave/internal/servicekeys"
)

// pcr0 stands for the SHA-256 of a vouch binary; otherPCR0 for another.
var (
	pcr0      = digest("vouch test binary")
	otherPCR0 = digest("another binary")
)

func digest(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// newSim returns a simulated attester whose root lives in dir.
func newSim(tb testing.TB, dir string, pcr0 []byte) *attest.Simulated {
	tb.Helper()
	s, err := attest.NewSimulated(dir, pcr0)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// identity returns a member's selfIdentity: its attester's document over
// the nonce, binding keys and replicaID as a replica's identity does.
func identity(a attest.Attester, keys *servicekeys.Keys, replicaID string) func(context.Context, []byte) ([]byte, error) {
	rk := []byte(keys.Receipt.Public().(ed25519.PublicKey))
	hk := keys.HPKE.PublicKey()
	return func(ctx context.Context, nonce []byte) ([]byte, error) {
		return a.Attest(ctx, attest.Request{Nonce: nonce, PublicKey: rk, UserData: api.IdentityUserDataReplica(rk, hk, replicaID)})
	}
}

// service is one member with its keys, served over real HTTP.
type service struct {
	dir    string
	att    *attest.Simulated
	keys   *servicekeys.Keys
	member *Member
	srv    *httptest.Server

	mu       sync.Mutex
	admitted []Admission
	leader   func() (bool, string)
}

// newService starts a simulated member (root in a fresh directory) that
// leads.
func newService(tb testing.TB) *service {
	tb.Helper()
	dir := tb.TempDir()
	keys, err := servicekeys.Generate()
	if err != nil {
		tb.Fatal(err)
	}
	s := &service{dir: dir, att: newSim(tb, dir, pcr0), keys: keys}
	s.leader = func() (bool, string) { return true, "" }
	s.member = NewMember(Policy{Attester: s.att}, keys, identity(s.att, keys, "r1"))
	s.srv = httptest.NewServer(s.member.Handler(func(_ context.Context, a *Admission) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.admitted = append(s.admitted, *a)
		return nil
	}, func() (bool, string) { return s.leader() }))
	tb.Cleanup(s.srv.Close)
	return s
}

func (s *service) admissions() []Admission {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Admission(nil), s.admitted...)
}

// joiner returns a joiner with attester a.
func joiner(a attest.Attester, id string) *Joiner {
	return &Joiner{Attester: a, ReplicaID: id, RaftAddr: "127.0.0.1:30001", APIURL: "http://127.0.0.1:30002"}
}

// joinDoc attests a join request as a joiner with a would, over nonce.
func joinDoc(tb testing.TB, a attest.Attester, nonce []byte, ad Admission) []byte {
	tb.Helper()
	pub := digest("some key") // any 32 bytes is a valid X25519 public key
	doc, err := a.Attest(context.Background(), attest.Request{Nonce: nonce, PublicKey: pub, UserData: userData(ad)})
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

var testAdmission = Admission{ReplicaID: "r2", RaftAddr: "127.0.0.1:30001", APIURL: "http://127.0.0.1:30002"}

// Real Nitro documents (testdata/nitro/README.md) and the time they verify at.
var nitroTime = time.Date(2024, time.September, 7, 14, 37, 39, 545000000, time.UTC)

func nitroDoc(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "nitro", "nitro_attestation.b64"))
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// replayAttester claims to be a Nitro attester and returns a recorded real
// document: it stands for a member on a Nitro enclave.
type replayAttester struct{ doc []byte }

func (r replayAttester) Platform() string { return attest.PlatformNitro }
func (r replayAttester) Attest(context.Context, attest.Request) ([]byte, error) {
	return r.doc, nil
}
