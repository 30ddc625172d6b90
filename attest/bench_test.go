package attest

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"
)

// The one-time cost of attestation: the runtime signs a document for each
// client nonce (Attest), the client checks it once (Verify) and then trusts
// the keys it binds until they change.

func benchRequest(b *testing.B) Request {
	nonce := make([]byte, 32)
	rand.Read(nonce)
	return Request{Nonce: nonce, PublicKey: bytes.Repeat([]byte{1}, 32), UserData: bytes.Repeat([]byte{2}, 90)}
}

// BenchmarkSimulatedAttest measures a SIMULATED document: CBOR payload and
// an ES384 signature (the Nitro Secure Module does this in hardware).
func BenchmarkSimulatedAttest(b *testing.B) {
	s := newTestSimulated(b)
	req := benchRequest(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Attest(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures a client's check of a document: COSE signature,
// certificate chain to the root, nonce, age and PCR policy.
func BenchmarkVerify(b *testing.B) {
	b.Run("simulated", func(b *testing.B) {
		req := benchRequest(b)
		doc, sim := simDoc(b, req)
		fp := sim.RootFingerprint()
		p := Policy{AllowSimulated: true, Nonce: req.Nonce, MaxAge: time.Hour, RootFingerprint: fp[:]}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Verify(doc, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("nitro", func(b *testing.B) {
		doc := realDoc(b)
		p := Policy{Now: at(nitroTime)}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Verify(doc, p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
