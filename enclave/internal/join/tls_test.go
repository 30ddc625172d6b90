package join

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/enclave/internal/servicekeys"
)

// tlsService is a member served over HTTPS whose identity binds the TLS
// key bound() returns (nil: none).
func tlsService(t *testing.T, bound func(srv *httptest.Server) []byte) *service {
	t.Helper()
	dir := t.TempDir()
	keys, err := servicekeys.Generate()
	if err != nil {
		t.Fatal(err)
	}
	s := &service{dir: dir, att: newSim(t, dir, pcr0), keys: keys}
	s.leader = func() (bool, string) { return true, "" }
	rk := []byte(keys.Receipt.Public().(ed25519.PublicKey))
	hk := keys.HPKE.PublicKey()
	var srv *httptest.Server
	s.member = NewMember(Policy{Attester: s.att}, keys, func(ctx context.Context, nonce []byte) ([]byte, error) {
		return s.att.Attest(ctx, attest.Request{Nonce: nonce, PublicKey: rk, UserData: api.IdentityUserDataReplicaTLS(rk, hk, "r1", bound(srv))})
	})
	srv = httptest.NewTLSServer(s.member.Handler(func(_ context.Context, a *Admission) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.admitted = append(s.admitted, *a)
		return nil
	}, func() (bool, string) { return s.leader() }))
	s.srv = srv
	t.Cleanup(srv.Close)
	return s
}

// TestJoinOverTLS: over https the joiner accepts the member's self-signed
// certificate only if the member's attestation binds its key.
func TestJoinOverTLS(t *testing.T) {
	s := tlsService(t, func(srv *httptest.Server) []byte { return api.TLSKeyHash(srv.Certificate()) })
	keys, err := joiner(newSim(t, s.dir, pcr0), "r2").Join(context.Background(), s.srv.URL)
	if err != nil || !bytes.Equal(keys.Marshal(), s.keys.Marshal()) {
		t.Fatalf("join over https: %v", err)
	}

	for name, bound := range map[string]func(*httptest.Server) []byte{
		"another key": func(*httptest.Server) []byte { return digest("another key") },
		"no key":      func(*httptest.Server) []byte { return nil },
	} {
		s := tlsService(t, bound)
		_, err := joiner(newSim(t, s.dir, pcr0), "r2").Join(context.Background(), s.srv.URL)
		if !errors.Is(err, ErrMember) || !strings.Contains(err.Error(), "presented TLS key sha256") {
			t.Errorf("%s: Join = %v; want ErrMember about the TLS key", name, err)
		}
	}
}
