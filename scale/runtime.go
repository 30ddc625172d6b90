package scale

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"vouch/api"
	"vouch/attest"
	"vouch/client"
	"vouch/enclave"
	"vouch/functions"
	"vouch/node"
)

// Runtime is an in-process runtime serving its HTTP API on a loopback
// port, with SIMULATED attestation and its data in a temporary directory.
type Runtime struct {
	URL   string
	Trust api.Trust

	srv    *enclave.Server
	admin  *client.Client
	dir    string
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	functions map[string]*function
}

// function is a deployed built-in with one token per node index, so that
// each node has its own rate limit, as docs/ELECTION.md recommends.
type function struct {
	id, checksum string
	tokens       []string
	clients      []*client.Client
}

// StartRuntime starts a runtime. logger receives its logs; nil discards
// them. rateLimit is enclave.Config.RateLimit (0: the default 1000 runs per
// second per token).
func StartRuntime(ctx context.Context, logger *slog.Logger, rateLimit float64) (_ *Runtime, err error) {
	if logger == nil {
		logger = discard()
	}
	dir, err := os.MkdirTemp("", "vouch-scale-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	pcr0, err := attest.ExecutableDigest()
	if err != nil {
		return nil, err
	}
	sim, err := attest.NewSimulated(dir, pcr0)
	if err != nil {
		return nil, err
	}
	srv, err := enclave.Open(ctx, enclave.Config{DataDir: dir, Attester: sim, Logger: logger, RateLimit: rateLimit})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close(context.Background())
		return nil, err
	}
	fp := sim.RootFingerprint()
	r := &Runtime{
		URL:       "http://" + ln.Addr().String(),
		Trust:     api.Trust{Platform: attest.PlatformSimulated, AllowSimulated: true, RootFingerprint: hex.EncodeToString(fp[:])},
		srv:       srv,
		dir:       dir,
		done:      make(chan struct{}),
		functions: map[string]*function{},
	}
	sctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { defer close(r.done); srv.Serve(sctx, ln) }()
	owner, _ := srv.OwnerToken()
	if r.admin, err = client.New(r.URL, client.Options{OwnerToken: owner, Trust: r.Trust}); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close stops the runtime and removes its directory.
func (r *Runtime) Close() error {
	if r == nil || r.cancel == nil {
		return nil
	}
	r.mu.Lock()
	for _, f := range r.functions {
		for _, c := range f.clients {
			if c != nil {
				c.Close()
			}
		}
	}
	r.mu.Unlock()
	r.admin.Close()
	r.cancel()
	var err error
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		err = errors.New("scale: runtime did not stop within 15s")
	}
	if cerr := r.srv.Close(context.Background()); err == nil {
		err = cerr
	}
	os.RemoveAll(r.dir)
	r.cancel = nil
	return err
}

// deploy deploys a built-in function once.
func (r *Runtime) deploy(ctx context.Context, builtin string) (*function, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f := r.functions[builtin]; f != nil {
		return f, nil
	}
	b, err := functions.Builtin(builtin)
	if err != nil {
		return nil, err
	}
	d, err := r.admin.Deploy(ctx, b, "")
	if err != nil {
		return nil, fmt.Errorf("deploying %s: %w", builtin, err)
	}
	f := &function{id: d.FunctionID, checksum: d.FunctionChecksum}
	r.functions[builtin] = f
	return f, nil
}

// NodeRuntime returns the runtime as node i sees it: a client of its own
// (attested once, then cached) and a function token of its own.
func (r *Runtime) NodeRuntime(ctx context.Context, builtin string, i int) (node.Runtime, string, string, error) {
	f, err := r.deploy(ctx, builtin)
	if err != nil {
		return nil, "", "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(f.tokens) <= i {
		tok, err := r.admin.MintToken(ctx, f.id, f.checksum, 24*time.Hour)
		if err != nil {
			return nil, "", "", fmt.Errorf("minting a token: %w", err)
		}
		c, err := client.New(r.URL, client.Options{Trust: r.Trust})
		if err != nil {
			return nil, "", "", err
		}
		f.tokens = append(f.tokens, tok.FunctionToken)
		f.clients = append(f.clients, c)
	}
	ref := client.FunctionRef{ID: f.id, Checksum: f.checksum, Token: f.tokens[i]}
	return node.NewClientRuntime(f.clients[i], ref), f.id, f.checksum, nil
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
