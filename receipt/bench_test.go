package receipt

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"
)

func benchReceipt(b *testing.B) (Receipt, ed25519.PrivateKey) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	return Receipt{
		FunctionID:       "abcdefghijklmnopqrstuvwxyz",
		FunctionChecksum: SHA256Hex([]byte("bundle")),
		InputSHA256:      SHA256Hex([]byte("input")),
		OutputSHA256:     SHA256Hex([]byte("output")),
		Seq:              4097,
		Time:             time.Now(),
	}, priv
}

// BenchmarkSign measures what the runtime does for every run: canonical
// message and Ed25519 signature.
func BenchmarkSign(b *testing.B) {
	r, priv := benchReceipt(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Sign(priv); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify measures what a client does for every run: the checks of
// the fields, canonical message and Ed25519 verification.
func BenchmarkVerify(b *testing.B) {
	r, priv := benchReceipt(b)
	if err := r.Sign(priv); err != nil {
		b.Fatal(err)
	}
	pub := priv.Public().(ed25519.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Verify(pub); err != nil {
			b.Fatal(err)
		}
	}
}
