package api_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/seal"
)

// The v2 identity vectors of docs/FORMATS.md, "Runtime identity": the keys
// of identity.json, and as the TLS key the receipt key itself (any key
// type hashes the same way: SHA-256 of its DER SubjectPublicKeyInfo).
func TestIdentityTLSVector(t *testing.T) {
	const (
		wantSPKI    = "302a300506032b6570032100d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
		wantHash    = "06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9"
		wantSingle  = "00000011766f7563682f6964656e746974792f763200000020d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a000000208520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a0000002006e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9"
		wantReplica = "00000019766f7563682f6964656e746974792f7265706c6963612f763200000020d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a000000208520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a000000097265706c6963612d310000002006e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9"
	)
	seed := unhex(t, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	receiptKey := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	hk, err := seal.NewPrivateKey(unhex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(receiptKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(spki); got != wantSPKI {
		t.Fatalf("SPKI is %s", got)
	}
	tlsKey := api.TLSKeyHash(&x509.Certificate{RawSubjectPublicKeyInfo: spki})
	if sum := sha256.Sum256(spki); !bytes.Equal(tlsKey, sum[:]) {
		t.Fatal("TLSKeyHash is not SHA-256 of the SPKI")
	}
	single := api.IdentityUserDataTLS(receiptKey, hk.PublicKey(), tlsKey)
	replica := api.IdentityUserDataReplicaTLS(receiptKey, hk.PublicKey(), "replica-1", tlsKey)
	var layout []byte
	layout = lp(lp(lp(lp(layout, []byte(api.IdentityTLSTag)), receiptKey), hk.PublicKey()), tlsKey)
	if !bytes.Equal(single, layout) {
		t.Fatalf("user_data is\n%x\nthe documented layout gives\n%x", single, layout)
	}
	layout = lp(lp(lp(lp(lp(nil, []byte(api.IdentityReplicaTLSTag)), receiptKey), hk.PublicKey()), []byte("replica-1")), tlsKey)
	if !bytes.Equal(replica, layout) {
		t.Fatalf("replica user_data is\n%x\nthe documented layout gives\n%x", replica, layout)
	}
	for name, got := range map[string]string{"tls_key_sha256": hex.EncodeToString(tlsKey), "v2": hex.EncodeToString(single), "replica v2": hex.EncodeToString(replica)} {
		want := map[string]string{"tls_key_sha256": wantHash, "v2": wantSingle, "replica v2": wantReplica}[name]
		if got != want {
			t.Errorf("%s is\n%s\nthe documented vector is\n%s", name, got, want)
		}
	}
	if b, err := api.ParseIdentityBinding(replica); err != nil || b.ReplicaID != "replica-1" || !bytes.Equal(b.TLSKeySHA256, tlsKey) {
		t.Fatalf("ParseIdentityBinding = %+v, %v", b, err)
	}
	doc, err := os.ReadFile("../docs/FORMATS.md")
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(string(doc)), "")
	for name, v := range map[string][]byte{"tls_key_sha256": tlsKey, "v2 user_data": single, "replica v2 user_data": replica} {
		if !strings.Contains(flat, hex.EncodeToString(v)) {
			t.Errorf("docs/FORMATS.md does not show the %s vector %x", name, v)
		}
	}
}
