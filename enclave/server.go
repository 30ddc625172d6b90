package enclave

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/internal/store"
	"github.com/vouch-dev/vouch/receipt"
	"github.com/vouch-dev/vouch/sandbox"
	"github.com/vouch-dev/vouch/seal"
	"github.com/vouch-dev/vouch/token"
)

// DefaultRateLimit is the runs per second a function token may make when
// Config.RateLimit is zero.
const DefaultRateLimit = 200

// Config configures a Server. Only DataDir and Attester are required.
type Config struct {
	// DataDir holds the store, the keys and the compilation cache.
	DataDir string
	// Attester produces the attestation documents that bind the runtime's
	// keys. It is always chosen explicitly (attest.NewSimulated for
	// development, attest.NewNitro inside an AWS Nitro Enclave).
	Attester attest.Attester
	// OwnerToken, if set, is the owner credential (from
	// --owner-token-file). Otherwise it is read from, or created in,
	// DataDir/owner.token.
	OwnerToken string
	// Logger receives the server's logs; nil means slog.Default().
	Logger *slog.Logger
	// MaxBundleSize bounds a deploy request; zero means
	// bundle.DefaultMaxSize (64 MiB).
	MaxBundleSize int64
	// DefaultLimits apply where a manifest is silent; zero fields mean
	// bundle.DefaultLimits.
	DefaultLimits bundle.Limits
	// MaxInstances bounds concurrent invocations per function (see
	// sandbox.Config).
	MaxInstances int
	// CacheDir holds compiled modules; empty means
	// DataDir/compilation-cache. Runtimes may share one.
	CacheDir string
	// Registerer receives the server's Prometheus metrics; nil means a
	// private registry, served at /metrics.
	Registerer prometheus.Registerer
	// RateLimit bounds the runs per second of each function token (with a
	// burst of twice as many); zero means DefaultRateLimit, negative
	// means no limit.
	// The owner credential is not limited.
	RateLimit float64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Replica, if set, makes this runtime one replica of a replicated
	// service (docs/ARCHITECTURE.md, "Replicated runtime"); nil means a single runtime.
	Replica *ReplicaConfig
	// TLSCertificate, if set, is what Serve serves HTTPS with, and its key
	// is bound in the identity (api.Identity.TLSKeySHA256) so that clients
	// pin it: GenerateTLSCertificate makes one inside the runtime, or an
	// operator supplies one. Nil means plain HTTP (binding no key), as
	// does serving Handler yourself.
	TLSCertificate *tls.Certificate
}

// Server is a running runtime. Create one with Open; serve its Handler.
type Server struct {
	cfg         Config
	log         *slog.Logger
	backend     backend
	keys        *keys
	keyID       string
	engine      *sandbox.Engine
	seq         *sequencer
	fns         registry
	loader      *loader
	ownerToken  string
	ownerNew    bool
	issuer      *token.Issuer
	verifier    *token.Verifier
	tokens      tokenCache
	limiter     *limiter
	volatile    volatileState
	replay      *seal.ReplayCache
	sessions    *seal.SessionCache
	bootID      []byte
	metrics     *metrics
	handler     http.Handler
	closeOnce   sync.Once
	issuerName  string
	now         func() time.Time
	platformTag string
	rep         *replicaState // nil for a single runtime
	tlsKey      []byte        // api.TLSKeyHash of cfg.TLSCertificate; nil for plain HTTP
}

// Open opens (creating on first start) the runtime in cfg.DataDir.
func Open(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("enclave: no data directory: set Config.DataDir")
	}
	if cfg.Attester == nil {
		return nil, errors.New("enclave: no attestation backend: set Config.Attester (attest.NewSimulated for development, attest.NewNitro inside an AWS Nitro Enclave)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBundleSize <= 0 {
		cfg.MaxBundleSize = bundle.DefaultMaxSize
	}
	cfg.DefaultLimits = cfg.DefaultLimits.Resolve(bundle.DefaultLimits)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("enclave: data directory: %w", err)
	}
	tlsKey, err := tlsKeyHash(cfg.TLSCertificate)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now, fns: registry{fns: map[string]*function{}}, tlsKey: tlsKey}
	s.loader = newLoader(runtime.GOMAXPROCS(0), s.compile, s.logLoadFailure)
	ok := false
	defer func() {
		if !ok {
			s.Close(context.Background())
		}
	}()
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(cfg.DataDir, cacheDir)
	}
	if s.engine, err = sandbox.NewEngine(sandbox.Config{CacheDir: cfg.CacheDir, MaxInstances: cfg.MaxInstances, ReleaseMemory: true}); err != nil {
		return nil, fmt.Errorf("enclave: %w", err)
	}
	s.platformTag = cfg.Attester.Platform()
	s.metrics = newMetrics(cfg.Registerer, s.platformTag, versionString())
	if cfg.Replica != nil {
		// The service keys, the state machine and raft; functions
		// arrive through the log.
		if err := s.openReplica(ctx); err != nil {
			return nil, err
		}
	} else if err := s.openLocal(); err != nil {
		return nil, err
	}
	s.keyID = receipt.KeyID(s.keys.receipt.Public().(ed25519.PublicKey))
	s.issuerName = "vouch:" + s.keyID[:16]
	if s.issuer, err = token.NewIssuer(s.keys.token, s.issuerName); err != nil {
		return nil, fmt.Errorf("enclave: %w", err)
	}
	if s.verifier, err = token.NewVerifier(s.keys.token.Public().(ed25519.PublicKey), s.issuerName, s.backend); err != nil {
		return nil, fmt.Errorf("enclave: %w", err)
	}
	switch {
	case cfg.RateLimit == 0:
		s.limiter = newLimiter(DefaultRateLimit, 2*DefaultRateLimit)
	case cfg.RateLimit > 0:
		s.limiter = newLimiter(cfg.RateLimit, int(2*cfg.RateLimit)+1)
	}
	// The replay cache is in memory, so it forgets what a previous run of
	// the process accepted. Its boot ID, random for every start and
	// published in the identity, is sealed into every input: an input of a
	// previous run is refused (stale_boot), never accepted again, and new
	// inputs are accepted at once after a restart.
	s.replay = seal.NewReplayCache(0, 0)
	s.sessions = seal.NewSessionCache(0)
	s.bootID = s.replay.BootID()
	if cfg.Replica == nil {
		if err := s.loadFunctions(); err != nil {
			return nil, fmt.Errorf("enclave: %w", err)
		}
		if n, err := s.backend.PruneRevocations(ctx, s.now()); err == nil && n > 0 {
			s.log.Info("pruned revocations of expired tokens", "count", n)
		}
	}
	s.handler = s.routes()
	if cfg.Replica != nil {
		s.startReplica()
	}
	// Compile the stored functions now, in the background, so that the
	// first callers do not pay for it (and callers that arrive first
	// wait for it without cancelling it).
	s.loadAll()
	ok = true
	return s, nil
}

// openLocal opens a single runtime's keys, owner credential and store.
func (s *Server) openLocal() error {
	cfg := s.cfg
	var err error
	if s.keys, err = loadKeys(cfg.DataDir); err != nil {
		return fmt.Errorf("enclave: %w", err)
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, storeFile))
	if err != nil {
		return fmt.Errorf("enclave: %w", err)
	}
	s.backend = localBackend{st}
	ceiling, err := st.SeqCeiling()
	if err != nil {
		return fmt.Errorf("enclave: %w", err)
	}
	s.seq = newSequencer(ceiling, s.backend.RaiseSeqCeiling)
	if cfg.OwnerToken != "" {
		if err := token.ValidateOwnerToken(cfg.OwnerToken); err != nil {
			return fmt.Errorf("enclave: owner token: %w", err)
		}
		s.ownerToken = cfg.OwnerToken
	} else if s.ownerToken, s.ownerNew, err = token.LoadOrCreateOwnerToken(filepath.Join(cfg.DataDir, ownerTokenFile)); err != nil {
		return fmt.Errorf("enclave: %w", err)
	}
	return nil
}

// OwnerToken returns the owner credential and whether it was created by
// this Open (so the CLI can print it once).
func (s *Server) OwnerToken() (tok string, created bool) { return s.ownerToken, s.ownerNew }

// KeyID returns the receipt key's fingerprint.
func (s *Server) KeyID() string { return s.keyID }

// ReceiptKey returns the receipt public key.
func (s *Server) ReceiptKey() ed25519.PublicKey {
	return s.keys.receipt.Public().(ed25519.PublicKey)
}

// Platform returns the attestation platform ("SIMULATED" or "aws-nitro").
func (s *Server) Platform() string { return s.platformTag }

// BootID returns this run's boot ID (a copy): 16 random bytes drawn at
// Open, published in the identity and bound into every sealed input.
func (s *Server) BootID() []byte { return bytes.Clone(s.bootID) }

// Handler returns the HTTP API.
func (s *Server) Handler() http.Handler { return s.handler }

// TLSKeySHA256 returns what the identity binds of the API's TLS key
// (api.TLSKeyHash of Config.TLSCertificate), or nil for plain HTTP.
func (s *Server) TLSKeySHA256() []byte { return bytes.Clone(s.tlsKey) }

// Serve serves the API on ln until ctx ends, then shuts down gracefully.
// With Config.TLSCertificate it serves HTTPS: TLS terminates here, inside
// the runtime, whatever carries the bytes (TCP, vsock through a proxy).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.cfg.TLSCertificate != nil {
		ln = tls.NewListener(ln, tlsConfig(s.cfg.TLSCertificate))
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		<-errc
		return nil
	}
}

// Close releases everything. It is idempotent.
func (s *Server) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		// Raft first: no entry applies (and no observer runs) after it.
		s.closeReplica()
		s.loader.stop()
		for _, f := range s.fns.all() {
			f.close(ctx)
		}
		if s.engine != nil {
			s.engine.Close(ctx)
		}
		if s.backend != nil {
			err = s.backend.Close()
		}
	})
	return err
}

func (s *Server) loadFunctions() error {
	recs, err := s.backend.Functions()
	if err != nil {
		return err
	}
	for _, rec := range recs {
		enc, err := s.backend.Bundle(rec.ID)
		if err != nil {
			return fmt.Errorf("function %s: %w", rec.ID, err)
		}
		b, err := bundle.Decode(enc)
		if err != nil || bundle.ChecksumOf(enc) != rec.Checksum {
			return fmt.Errorf("%w: function %s: stored bundle does not match its checksum", store.ErrCorrupt, rec.ID)
		}
		f, err := s.newFunction(rec, b)
		if err != nil {
			return err
		}
		s.fns.put(f)
	}
	if len(recs) > 0 {
		s.log.Info("loaded functions", "count", len(recs))
	}
	return nil
}

func (s *Server) newFunction(rec *store.Function, b *bundle.Bundle) (*function, error) {
	f := &function{rec: rec, manifest: b.Manifest, limits: b.Manifest.Limits.Resolve(s.cfg.DefaultLimits)}
	f.statement = receipt.Statement{FunctionID: rec.ID, FunctionChecksum: rec.Checksum}
	if err := f.statement.Sign(s.keys.receipt); err != nil {
		return nil, err
	}
	return f, nil
}

// compile loads a function's module from the store into the sandbox. It
// runs in the background, under the loader's context.
func (s *Server) compile(ctx context.Context, f *function) (*sandbox.Function, error) {
	enc, err := s.backend.Bundle(f.rec.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, sandbox.ErrClosed // deleted meanwhile (a replica replaying its log)
	}
	if err != nil {
		return nil, err
	}
	b, err := bundle.Decode(enc)
	if err != nil {
		return nil, err
	}
	return s.engine.Load(ctx, b.Module, f.limits)
}

// newFunctionID returns 26 characters of base32 over 128 random bits.
func newFunctionID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])), nil
}

// Deploy stores and compiles a bundle and returns its record. name
// overrides the manifest's name.
func (s *Server) Deploy(ctx context.Context, b *bundle.Bundle, name string) (*store.Function, error) {
	if name == "" {
		name = b.Name()
	}
	if name != "" && !bundle.ValidName(name) {
		return nil, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: fmt.Sprintf("function name %q must be 1-64 characters of A-Z a-z 0-9 . _ -", name)}
	}
	enc := b.Encode()
	id, err := newFunctionID()
	if err != nil {
		return nil, err
	}
	rec := &store.Function{ID: id, Name: name, Checksum: bundle.ChecksumOf(enc), CreatedAt: s.now().UTC().Truncate(time.Millisecond), Size: len(enc)}
	f, err := s.newFunction(rec, b)
	if err != nil {
		return nil, err
	}
	// Compile and start it before storing anything: a module that cannot
	// run is refused, and a failed deploy leaves nothing behind.
	compiled, err := s.engine.Load(ctx, b.Module, f.limits)
	if err != nil {
		if errors.Is(err, sandbox.ErrModule) {
			return nil, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidModule, Message: err.Error(), Hint: moduleHint(err, f.limits)}
		}
		return nil, err
	}
	f.compiled = compiled
	if s.rep != nil {
		// The entry's observer registers f when it applies.
		defer s.rep.addPending(ctx, f)()
	}
	if err := s.backend.PutFunction(ctx, rec, enc); err != nil {
		if s.rep == nil {
			compiled.Close(ctx)
		}
		return nil, err
	}
	if s.rep == nil {
		s.fns.put(f)
	}
	s.log.Info("deployed function", "function_id", id, "name", name, "checksum", rec.Checksum, "mode", compiled.Mode(), "size", len(enc))
	return rec, nil
}

// moduleHint says what to do about a module the sandbox refused.
func moduleHint(err error, l bundle.Limits) string {
	if errors.Is(err, sandbox.ErrMemoryLimit) {
		return fmt.Sprintf("raise \"limits\": {\"memory_mib\": …} in the function's vouch.json (now %d, at most %d), or build the module to start smaller", l.MemoryMiB, bundle.MaxLimits.MemoryMiB)
	}
	var fe *sandbox.Error
	if errors.As(err, &fe) {
		// A reactor that failed to initialise.
		if h := failureHint(fe.Kind, l, false); h != "" {
			return h
		}
		return "the module's _initialize failed; run it locally (for example with wazero run) to see why"
	}
	return "build a WASI preview 1 module, e.g. GOOS=wasip1 GOARCH=wasm go build (add -buildmode=c-shared for the vouch guest fast path)"
}

// Delete removes a function.
func (s *Server) Delete(ctx context.Context, id string) error {
	if err := s.backend.DeleteFunction(ctx, id); err != nil {
		return err
	}
	if f := s.fns.remove(id); f != nil {
		f.close(ctx)
	}
	s.volatile.drop(id)
	s.log.Info("deleted function", "function_id", id)
	return nil
}

// Identity returns the runtime's identity with an attestation document
// bound to nonce.
func (s *Server) Identity(ctx context.Context, nonce []byte) (*api.Identity, error) {
	rk := s.ReceiptKey()
	hk := s.keys.hpke.PublicKey()
	userData := api.IdentityUserDataTLS(rk, hk, s.tlsKey)
	replicaID := ""
	if s.rep != nil {
		replicaID = s.rep.cfg.ID
		userData = api.IdentityUserDataReplicaTLS(rk, hk, replicaID, s.tlsKey)
	}
	doc, err := s.cfg.Attester.Attest(ctx, attest.Request{Nonce: nonce, PublicKey: rk, UserData: userData})
	if err != nil {
		return nil, fmt.Errorf("attestation: %w", err)
	}
	id := &api.Identity{
		Platform:     s.platformTag,
		ReceiptKey:   rk,
		KeyID:        s.keyID,
		HPKEKey:      hk,
		Attestation:  doc,
		Version:      versionString(),
		BootID:       bytes.Clone(s.bootID),
		ReplicaID:    replicaID,
		TLSKeySHA256: bytes.Clone(s.tlsKey),
	}
	if sim, ok := s.cfg.Attester.(*attest.Simulated); ok {
		fp := sim.RootFingerprint()
		id.RootFingerprint = hex.EncodeToString(fp[:])
	} else if s.platformTag == attest.PlatformNitro {
		id.RootFingerprint = attest.NitroRootFingerprint
	}
	return id, nil
}
