package api_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/seal"
)

// The replica identity vector of docs/FORMATS.md, "Replica identity": the
// keys of identity.json and replica ID "replica-1". The test checks the
// code against it and that the document still shows it.
func TestReplicaIdentityVector(t *testing.T) {
	const want = "00000019766f7563682f6964656e746974792f7265706c6963612f763100000020d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a000000208520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a000000097265706c6963612d31"
	seed := unhex(t, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	receiptKey := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	hk, err := seal.NewPrivateKey(unhex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
	if err != nil {
		t.Fatal(err)
	}
	ud := api.IdentityUserDataReplica(receiptKey, hk.PublicKey(), "replica-1")
	var layout []byte
	layout = lp(layout, []byte(api.IdentityReplicaTag))
	layout = lp(layout, receiptKey)
	layout = lp(layout, hk.PublicKey())
	layout = lp(layout, []byte("replica-1"))
	if !bytes.Equal(ud, layout) {
		t.Fatalf("user_data is\n%x\nthe documented layout gives\n%x", ud, layout)
	}
	if got := hex.EncodeToString(ud); got != want {
		t.Errorf("user_data is\n%s\nthe documented vector is\n%s", got, want)
	}
	rk, hk2, id, err := api.ParseIdentityUserData(ud)
	if err != nil || !bytes.Equal(rk, receiptKey) || !bytes.Equal(hk2, hk.PublicKey()) || id != "replica-1" {
		t.Fatalf("ParseIdentityUserData = %x, %x, %q, %v", rk, hk2, id, err)
	}
	doc, err := os.ReadFile("../docs/FORMATS.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(strings.Fields(string(doc)), ""), want) {
		t.Errorf("docs/FORMATS.md no longer shows the replica user_data vector %s", want)
	}
}
