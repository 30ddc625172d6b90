package enclave

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/attest"
)

func benchServer(b *testing.B) *Server {
	b.Helper()
	dir := b.TempDir()
	sim, err := attest.NewSimulated(dir, bytes.Repeat([]byte{7}, attest.SimulatedPCRLen))
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(context.Background(), Config{DataDir: dir, Attester: sim, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// BenchmarkIdentity measures the runtime's side of an attestation: a
// document bound to the client's nonce and the runtime's keys (SIMULATED:
// an ES384 signature in software).
func BenchmarkIdentity(b *testing.B) {
	s := benchServer(b)
	nonce := make([]byte, 32)
	rand.Read(nonce)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Identity(ctx, nonce); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenCheck measures the function token check of a run: "cached"
// is every run after a token's first (a SHA-256 of the token and a map
// lookup), "verify" the first (EdDSA JWT signature, claims, revocation
// lookup in the store).
func BenchmarkTokenCheck(b *testing.B) {
	s := benchServer(b)
	const fn = "abcdefghijklmnopqrstuvwxyz"
	tok, _, err := s.issuer.Mint(fn, strings.Repeat("ab", 32), time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.tokens.verify(s.verifier, tok, fn, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.verifier.Verify(tok, fn); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRunResultJSON compares encoding/json with the hand-written
// encoder of the run answer (100-member leader output).
func BenchmarkRunResultJSON(b *testing.B) {
	res := sampleResult()
	res.Output = bytes.Repeat([]byte("x"), 820)
	b.Run("encoding-json", func(b *testing.B) {
		var buf bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			json.NewEncoder(&buf).Encode(&res)
		}
	})
	b.Run("hand-written", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = appendRunResult(buf[:0], &res)
		}
	})
}
