package servicekeys

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/seal"
)

// The service keys vector of docs/FORMATS.md, "Service keys": the test
// checks the code against it and that the document still shows it.
const (
	vecReceiptSeed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60" // RFC 8032 TEST 1
	vecTokenSeed   = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb" // RFC 8032 TEST 2
	vecHPKE        = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a" // RFC 7748 6.1 Alice
	vecOwner       = "vouch_owner_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	vecSecret      = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

	vecEncoding = "00000015766f7563682d736572766963652d6b6579732d7631000000209d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60000000204ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb0000002077076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a00000037766f7563685f6f776e65725f4141414141414141414141414141414141414141414141414141414141414141414141414141414141414100000020000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	vecKeyID    = "21fe31dfa154a261626bf854046fd2271b7bed4b6abe45aa58877ef47f9721b9"
	vecStorage  = "bb42f3103747644f64d80ca75aa1fd9fa4f2a4338bf3a31907e1cb81bc328cd7"
	vecTLSCA    = "35db4eea4f519b4e4833f535e84f4923a83bf48c5da2539d319e710995ff10b6"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVector(t *testing.T) {
	h, err := seal.NewPrivateKey(unhex(t, vecHPKE))
	if err != nil {
		t.Fatal(err)
	}
	k := &Keys{
		Receipt:    ed25519.NewKeyFromSeed(unhex(t, vecReceiptSeed)),
		Token:      ed25519.NewKeyFromSeed(unhex(t, vecTokenSeed)),
		HPKE:       h,
		OwnerToken: vecOwner,
		Secret:     unhex(t, vecSecret),
	}
	enc := k.Marshal()
	// The layout written from the document: each field length-prefixed.
	var layout []byte
	for _, f := range [][]byte{[]byte(Tag), unhex(t, vecReceiptSeed), unhex(t, vecTokenSeed), unhex(t, vecHPKE), []byte(vecOwner), unhex(t, vecSecret)} {
		layout = append(layout, byte(len(f)>>24), byte(len(f)>>16), byte(len(f)>>8), byte(len(f)))
		layout = append(layout, f...)
	}
	if !bytes.Equal(enc, layout) {
		t.Errorf("Marshal is\n%x\nthe documented layout gives\n%x", enc, layout)
	}
	got := map[string]string{
		"encoding":      hex.EncodeToString(enc),
		"key ID":        k.KeyID(),
		"storage key":   hex.EncodeToString(k.StorageKey()),
		"TLS authority": hex.EncodeToString(k.TLSAuthority().Public().(ed25519.PublicKey)),
	}
	want := map[string]string{"encoding": vecEncoding, "key ID": vecKeyID, "storage key": vecStorage, "TLS authority": vecTLSCA}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s is\n%s\nthe documented vector is\n%s", name, got[name], w)
		}
	}
	back, err := Unmarshal(enc)
	if err != nil || !bytes.Equal(back.Marshal(), enc) {
		t.Fatalf("Unmarshal(Marshal()) does not give the same keys: %v", err)
	}
	doc, err := os.ReadFile("../../../docs/FORMATS.md")
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(string(doc)), "")
	for name, w := range want {
		if !strings.Contains(flat, w) {
			t.Errorf("docs/FORMATS.md no longer shows the %s %s", name, w)
		}
	}
}
