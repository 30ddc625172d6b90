//go:build !race

// The full example compiles the leader function (3.5 MB of WebAssembly):
// about 2 s normally, but half a minute under the race detector, where it
// would only test the compiler. It is left out of race builds.

package client_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/enclave"
	"github.com/vouch-dev/vouch/functions"
)

// Example deploys the built-in leader function to a runtime, runs it and
// checks what the client verified. The runtime runs in this process, with
// SIMULATED attestation (development only); a real program would Dial a
// `vouch enclave` instead.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "vouch-client-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	pcr0, err := attest.ExecutableDigest()
	if err != nil {
		log.Fatal(err)
	}
	sim, err := attest.NewSimulated(dir, pcr0)
	if err != nil {
		log.Fatal(err)
	}
	srv, err := enclave.Open(ctx, enclave.Config{DataDir: dir, Attester: sim, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close(ctx)
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	owner, _ := srv.OwnerToken()

	// The owner deploys the function and mints a token for it.
	admin, err := client.New(hs.URL, client.Options{OwnerToken: owner})
	if err != nil {
		log.Fatal(err)
	}
	b, err := functions.Builtin("leader")
	if err != nil {
		log.Fatal(err)
	}
	d, err := admin.Deploy(ctx, b, "")
	if err != nil {
		log.Fatal(err)
	}
	tok, err := admin.MintToken(ctx, d.FunctionID, d.FunctionChecksum, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("deployed:", d.FunctionName, d.FunctionChecksum == b.Checksum())

	// A caller who knows the checksum it expects (here, computed from the
	// bundle it built) runs the function. It allows SIMULATED attestation
	// from this machine's simulated root only.
	root := sim.RootFingerprint()
	c, err := client.Dial(ctx, hs.URL, client.Options{Trust: api.Trust{Platform: attest.PlatformSimulated, AllowSimulated: true, RootFingerprint: hex.EncodeToString(root[:])}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.Cached().Simulated, c.Cached().Platform)
	ref := client.FunctionRef{ID: d.FunctionID, Checksum: b.Checksum(), Token: tok.FunctionToken}
	res, err := c.Run(ctx, ref, []byte(`{"cluster":"demo","node_list":["5000","5001","5002"]}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", res.Output)
	fmt.Println("receipt:", res.Receipt.Seq, res.Receipt.Verify(c.Cached().ReceiptKey) == nil, res.Sealed)

	// Expecting another checksum stops the run before the input is sent.
	ref.Checksum = strings.Repeat("0", 64)
	_, err = c.Run(ctx, ref, []byte("secret input"))
	fmt.Println(errors.Is(err, client.ErrChecksumMismatch))
	// Output:
	// deployed: leader true
	// true SIMULATED
	// {"cluster":"demo","leader":"5002","members":["5000","5001","5002"],"members_digest":"b0b68d797edfd8f4eabb59e224a78aa3866e6fb5075aaafa3f1446faf156a1f8"}
	// receipt: 1 true true
	// true
}
