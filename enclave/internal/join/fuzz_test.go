package join

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"

	"github.com/vouch-dev/vouch/enclave/internal/servicekeys"
)

// FuzzAdmit decodes a join request body and admits it: nothing panics, and
// every failure is a refusal.
func FuzzAdmit(f *testing.F) {
	s := newService(f)
	n, _ := s.member.Challenge()
	good, _ := json.Marshal(Request{Attestation: joinDoc(f, s.att, n, testAdmission)})
	f.Add(good)
	f.Add([]byte(`{"attestation":"AAAA"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeRequest(body)
		if err != nil {
			req = &Request{Attestation: body}
		}
		if _, _, err := s.member.Admit(context.Background(), req); err != nil && !errors.Is(err, ErrRefused) {
			t.Fatalf("not a refusal: %v", err)
		}
	})
}

// FuzzParseUserData: what decodes re-encodes to the same bytes.
func FuzzParseUserData(f *testing.F) {
	f.Add(userData(testAdmission))
	f.Add(userData(Admission{ReplicaID: "x", RaftAddr: "[::1]:1", APIURL: "https://h/p"}))
	f.Add([]byte{0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseUserData(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if !bytes.Equal(userData(a), b) {
			t.Fatal("accepted a non-canonical encoding")
		}
	})
}

// FuzzOpenKeys opens hostile sealed keys: nothing panics, nothing but the
// real sealed keys opens.
func FuzzOpenKeys(f *testing.F) {
	keys, _ := servicekeys.Generate()
	priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	nonce := digest("n")
	sealed, err := sealKeys(priv.PublicKey().Bytes(), "r2", nonce, keys)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add(sealed[:sealedOverhead])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := openKeys(priv, "r2", nonce, b)
		if err != nil {
			if !errors.Is(err, ErrMember) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		if !bytes.Equal(b, sealed) || !bytes.Equal(got.Marshal(), keys.Marshal()) {
			t.Fatal("other bytes opened")
		}
	})
}
