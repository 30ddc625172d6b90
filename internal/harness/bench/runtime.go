package bench

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/enclave"
)

// Runtime is an in-process runtime serving its HTTP API on a loopback port,
// with SIMULATED attestation and its data in a temporary directory. It is
// what `vouch-bench run` measures when no --enclave is given, and what the
// end-to-end `go test -bench` benchmarks run against.
type Runtime struct {
	// URL is the runtime's base URL, http://127.0.0.1:PORT.
	URL string
	// Server is the runtime itself.
	Server *enclave.Server
	// Owner is the owner credential.
	Owner string
	// Trust pins the runtime's simulated attestation root.
	Trust api.Trust

	dir    string
	ownDir bool
	cancel context.CancelFunc
	done   chan error
}

// RuntimeOptions configure StartRuntime.
type RuntimeOptions struct {
	// Dir is the data directory; empty means a new temporary directory,
	// removed by Close.
	Dir string
	// RateLimit is enclave.Config.RateLimit. Zero means 1e9 runs per
	// second per token: the limiter still runs on every request, but a
	// benchmark never hits it.
	RateLimit float64
	// Logger receives the runtime's logs; nil discards them.
	Logger *slog.Logger
}

// StartRuntime opens a runtime and serves it on 127.0.0.1 with the same
// http.Server settings as `vouch enclave` (enclave.Server.Serve).
func StartRuntime(ctx context.Context, o RuntimeOptions) (_ *Runtime, err error) {
	r := &Runtime{dir: o.Dir, done: make(chan error, 1)}
	if r.dir == "" {
		if r.dir, err = os.MkdirTemp("", "vouch-bench-"); err != nil {
			return nil, err
		}
		r.ownDir = true
	}
	defer func() {
		if err != nil && r.ownDir {
			os.RemoveAll(r.dir)
		}
	}()
	pcr0, err := attest.ExecutableDigest()
	if err != nil {
		return nil, err
	}
	sim, err := attest.NewSimulated(r.dir, pcr0)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.RateLimit == 0 {
		o.RateLimit = 1e9
	}
	srv, err := enclave.Open(ctx, enclave.Config{DataDir: r.dir, Attester: sim, Logger: o.Logger, RateLimit: o.RateLimit})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close(context.Background())
		return nil, err
	}
	r.Server = srv
	r.URL = "http://" + ln.Addr().String()
	r.Owner, _ = srv.OwnerToken()
	fp := sim.RootFingerprint()
	r.Trust = api.Trust{Platform: attest.PlatformSimulated, AllowSimulated: true, RootFingerprint: hex.EncodeToString(fp[:])}
	sctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- srv.Serve(sctx, ln) }()
	return r, nil
}

// Close stops the runtime and removes its temporary directory.
func (r *Runtime) Close() error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	var err error
	select {
	case err = <-r.done:
	case <-time.After(15 * time.Second):
		err = errors.New("bench: runtime did not shut down within 15s")
	}
	if cerr := r.Server.Close(context.Background()); err == nil {
		err = cerr
	}
	if r.ownDir {
		os.RemoveAll(r.dir)
	}
	r.cancel = nil
	return err
}
