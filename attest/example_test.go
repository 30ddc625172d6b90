package attest_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/vouch-dev/vouch/attest"
)

// A development machine without Nitro uses the simulated backend,
// explicitly. Clients refuse its documents unless they allow simulated
// attestation, and should then pin the machine's simulated root.
func ExampleNewSimulated() {
	dataDir, err := os.MkdirTemp("", "vouch-attest-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dataDir)

	// vouch passes attest.ExecutableDigest(), the SHA-256 of its binary
	// (what `sha256sum vouch` prints).
	pcr0 := sha256.Sum256([]byte("the vouch binary"))
	sim, err := attest.NewSimulated(dataDir, pcr0[:])
	if err != nil {
		panic(err)
	}
	nonce := []byte("fresh client nonce")
	doc, err := sim.Attest(context.Background(), attest.Request{Nonce: nonce, PublicKey: []byte("receipt key")})
	if err != nil {
		panic(err)
	}

	// A client with the default, strict policy refuses it.
	_, err = attest.Verify(doc, attest.Policy{Nonce: nonce})
	fmt.Println(errors.Is(err, attest.ErrSimulated))
	fmt.Println(err)

	// A development client allows simulated documents from this root only.
	root := sim.RootFingerprint()
	claims, err := attest.Verify(doc, attest.Policy{
		AllowSimulated:  true,
		RootFingerprint: root[:],
		Nonce:           nonce,
		MaxAge:          time.Minute,
		PCRs:            map[int][][]byte{0: {pcr0[:]}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(claims.Platform, claims.Simulated, string(claims.PublicKey))
	// Output:
	// true
	// attest: attestation document is SIMULATED; refusing it (allow simulated attestation explicitly, with Policy.AllowSimulated, for development only)
	// SIMULATED true receipt key
}
