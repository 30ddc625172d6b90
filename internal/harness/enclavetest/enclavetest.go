// Package enclavetest starts a real runtime on a loopback port for tests:
// the enclave server, its bbolt store and keys in a temporary directory, and
// SIMULATED attestation.
package enclavetest

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/enclave"
	"github.com/vouch-dev/vouch/functions"
)

// Env is a running runtime.
type Env struct {
	URL    string
	Dir    string
	Server *enclave.Server
	Owner  string
	// RootFingerprint is the simulated root's fingerprint, hex.
	RootFingerprint string

	t      testing.TB
	opts   []Option
	cancel context.CancelFunc
	done   chan struct{}
	addr   string
}

// Option adjusts the runtime's configuration before it opens.
type Option func(*enclave.Config)

// WithRateLimit sets enclave.Config.RateLimit: runs per second allowed to
// each function token (burst twice as many); negative means no limit.
func WithRateLimit(perSecond float64) Option {
	return func(c *enclave.Config) { c.RateLimit = perSecond }
}

// WithCacheDir gives the runtime its own compilation cache in dir instead
// of the one every runtime of the test process shares; "" means the
// runtime's default, DATA/compilation-cache.
func WithCacheDir(dir string) Option {
	return func(c *enclave.Config) { c.CacheDir = dir }
}

// WithTLS serves HTTPS with a new key (enclave.GenerateTLSCertificate),
// bound in the identity; a Restart makes another.
func WithTLS() Option {
	return func(c *enclave.Config) {
		cert, err := enclave.GenerateTLSCertificate()
		if err != nil {
			panic(err)
		}
		c.TLSCertificate = cert
	}
}

// WithTLSCertificate serves HTTPS with cert.
func WithTLSCertificate(cert *tls.Certificate) Option {
	return func(c *enclave.Config) { c.TLSCertificate = cert }
}

// Start starts a runtime in a new temporary directory.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	return StartIn(t, t.TempDir(), "127.0.0.1:0", opts...)
}

// StartIn starts a runtime on dir, listening on addr.
func StartIn(t testing.TB, dir, addr string, opts ...Option) *Env {
	t.Helper()
	ctx := context.Background()
	pcr0, err := attest.ExecutableDigest()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := attest.NewSimulated(dir, pcr0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := enclave.Config{DataDir: dir, Attester: sim, CacheDir: sharedCache(t), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := enclave.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", addr)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond) // the previous runtime's port may linger
	}
	if err != nil {
		srv.Close(ctx)
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	scheme := "http://"
	if cfg.TLSCertificate != nil {
		scheme = "https://"
	}
	e := &Env{URL: scheme + ln.Addr().String(), Dir: dir, Server: srv, t: t, opts: opts, cancel: cancel, done: make(chan struct{}), addr: ln.Addr().String()}
	e.Owner, _ = srv.OwnerToken()
	fp := sim.RootFingerprint()
	e.RootFingerprint = hex.EncodeToString(fp[:])
	go func() {
		defer close(e.done)
		srv.Serve(sctx, ln)
	}()
	t.Cleanup(e.Stop)
	return e
}

var (
	cacheOnce sync.Once
	cacheDir  string
)

// sharedCache returns a compilation cache shared by every runtime of this
// test process, so that each test does not compile the same modules again.
func sharedCache(t testing.TB) string {
	cacheOnce.Do(func() {
		cacheDir, _ = os.MkdirTemp("", "vouch-test-cache-")
	})
	return cacheDir
}

// Addr returns the listening address.
func (e *Env) Addr() string { return e.addr }

// Stop shuts the runtime down. It is idempotent.
func (e *Env) Stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	<-e.done
	e.Server.Close(context.Background())
	e.cancel = nil
}

// Restart stops the runtime and starts it again on the same directory and
// port and with the same options, as a restarted process would.
func (e *Env) Restart() *Env {
	e.Stop()
	return StartIn(e.t, e.Dir, e.addr, e.opts...)
}

// Trust returns a trust block that pins this runtime's simulated root.
func (e *Env) Trust() api.Trust {
	return api.Trust{Platform: attest.PlatformSimulated, AllowSimulated: true, RootFingerprint: e.RootFingerprint}
}

// Client returns a client with the owner credential that trusts this
// runtime.
func (e *Env) Client(opts client.Options) *client.Client {
	e.t.Helper()
	opts.OwnerToken = e.Owner
	if opts.Trust.Platform == "" {
		opts.Trust = e.Trust()
	}
	c, err := client.New(e.URL, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return c
}

// DeployLeader deploys the built-in leader function and mints a token for
// it.
func (e *Env) DeployLeader() client.FunctionRef {
	e.t.Helper()
	b, err := functions.Builtin("leader")
	if err != nil {
		e.t.Fatal(err)
	}
	c := e.Client(client.Options{})
	ctx := context.Background()
	d, err := c.Deploy(ctx, b, "")
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := c.MintToken(ctx, d.FunctionID, d.FunctionChecksum, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: tok.FunctionToken}
}
