package scale

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/enclave"
	"github.com/vouch-dev/vouch/functions"
	"github.com/vouch-dev/vouch/internal/harness/bench"
	"github.com/vouch-dev/vouch/node"
)

// Runtime is an in-process runtime serving its HTTP API on a loopback
// port, with SIMULATED attestation and its data in a temporary directory
// (bench.Runtime), and the built-in functions the nodes call.
type Runtime struct {
	*bench.Runtime
	admin *client.Client
	// urls lists a replicated runtime's replicas (AttachReplicas); empty
	// for the in-process runtime at URL.
	urls []string

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

// StartRuntime starts a runtime with the default rate limit of
// enclave.DefaultRateLimit runs per second per token, as `vouch enclave`
// has.
func StartRuntime(ctx context.Context) (*Runtime, error) {
	br, err := bench.StartRuntime(ctx, bench.RuntimeOptions{RateLimit: enclave.DefaultRateLimit})
	if err != nil {
		return nil, err
	}
	r := &Runtime{Runtime: br, functions: map[string]*function{}}
	if r.admin, err = client.New(r.URL, client.Options{OwnerToken: r.Owner, Trust: r.Trust}); err != nil {
		br.Close()
		return nil, err
	}
	return r, nil
}

// AttachReplicas returns the replicated runtime whose replicas serve at
// urls (run elsewhere, such as `vouch enclave` processes) as a Runtime:
// every client it makes, the nodes' included, is a client.NewReplicas
// over all of them. Close closes the clients and stops nothing.
func AttachReplicas(urls []string, trust api.Trust, owner string) (*Runtime, error) {
	r := &Runtime{Runtime: &bench.Runtime{URL: urls[0], Owner: owner, Trust: trust}, urls: urls, functions: map[string]*function{}}
	var err error
	if r.admin, err = client.NewReplicas(urls, client.Options{OwnerToken: owner, Trust: trust, Logger: discard()}); err != nil {
		return nil, err
	}
	return r, nil
}

// Close stops the runtime and removes its directory.
func (r *Runtime) Close() error {
	if r == nil {
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
	r.functions = map[string]*function{}
	r.mu.Unlock()
	r.admin.Close()
	return r.Runtime.Close()
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
		opts := client.Options{Trust: r.Trust}
		if len(r.urls) > 0 {
			opts.Logger = discard() // a line per failover between replicas
		}
		c, err := client.NewReplicas(r.urlList(), opts)
		if err != nil {
			return nil, "", "", err
		}
		f.tokens = append(f.tokens, tok.FunctionToken)
		f.clients = append(f.clients, c)
	}
	ref := client.FunctionRef{ID: f.id, Checksum: f.checksum, Token: f.tokens[i]}
	return node.NewClientRuntime(f.clients[i], ref), f.id, f.checksum, nil
}

// urlList is the replicas' URLs, or the in-process runtime's.
func (r *Runtime) urlList() []string {
	if len(r.urls) > 0 {
		return r.urls
	}
	return []string{r.URL}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
