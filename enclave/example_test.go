package enclave_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/enclave"
	"github.com/vouch-dev/vouch/functions"
)

// A runtime with SIMULATED attestation, the built-in leader function
// deployed, and one verified run.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "vouch-example-")
	defer os.RemoveAll(dir)

	pcr0, _ := attest.ExecutableDigest()
	sim, _ := attest.NewSimulated(dir, pcr0)
	srv, err := enclave.Open(ctx, enclave.Config{DataDir: dir, Attester: sim, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		panic(err)
	}
	defer srv.Close(ctx)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	owner, _ := srv.OwnerToken()
	fp := sim.RootFingerprint()
	trust := api.Trust{Platform: attest.PlatformSimulated, AllowSimulated: true, RootFingerprint: hex.EncodeToString(fp[:])}
	c, _ := client.New(ts.URL, client.Options{OwnerToken: owner, Trust: trust})
	defer c.Close()

	b, _ := functions.Builtin("leader")
	d, err := c.Deploy(ctx, b, "")
	if err != nil {
		panic(err)
	}
	tok, _ := c.MintToken(ctx, d.FunctionID, d.FunctionChecksum, time.Hour)
	res, err := c.Run(ctx, client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: tok.FunctionToken},
		[]byte(`{"cluster":"demo","node_list":["5000","5001","5002"]}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(string(res.Output)[:43])
	fmt.Println("receipt verifies:", res.Receipt.Verify(srv.ReceiptKey()) == nil)
	// Output:
	// {"cluster":"demo","leader":"5002","members"
	// receipt verifies: true
}
