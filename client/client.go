// Package client is the Go SDK for a vouch runtime. The CLI and the node use
// it; so can any program.
//
// A Client trusts a runtime only through an attestation document it has
// verified itself: Dial asks the runtime for its identity with a fresh
// nonce, checks the document against the trust policy, and takes the receipt
// key and the HPKE key from the document, never from the surrounding JSON.
// From then on:
//
//   - before it sends any input, Run checks the runtime's signed statement
//     of the function's checksum against the checksum the caller expects,
//     and stops with ErrChecksumMismatch if they differ;
//   - it seals the input with HPKE to the attested key, bound to the
//     function's ID and expected checksum;
//   - it verifies the receipt of every output: signature, function,
//     checksum, and the digests of what it sent and what it got back.
//
// A Client keeps its HTTP connections alive and caches the verified identity
// and statements, so repeated runs pay neither a handshake nor an
// attestation. It attests again, once, when the runtime's keys or boot may
// have changed: when a receipt or a statement names a key it does not know,
// when the runtime cannot open an input sealed to the cached key, and when it
// refuses an input sealed for an earlier boot (it restarted); then it retries
// the run once. If the trust policy pins the receipt key (Trust.KeyID), a
// runtime with another key is refused (ErrPinnedKey); otherwise the new key
// is trusted if its attestation passes the policy, and the change is logged
// as a warning. A Client is safe for concurrent use.
//
// A Client may know several replicas of one replicated runtime
// (NewReplicas, api.Ref.URLs): see failover.go for how it picks one, moves
// between them and follows not_leader redirects.
package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/internal/readall"
	"github.com/vouch-dev/vouch/receipt"
	"github.com/vouch-dev/vouch/seal"
)

// DefaultURL is the runtime a client talks to when none is given.
const DefaultURL = "https://127.0.0.1:7070"

// ErrChecksumMismatch reports that the deployed function is not the one the
// caller expects. Nothing was sent.
var ErrChecksumMismatch = errors.New("function checksum mismatch")

// ErrReceipt is wrapped by every error about a receipt that does not verify.
var ErrReceipt = errors.New("receipt does not verify")

// ErrPinnedKey is wrapped when the runtime attests a receipt key other than
// the one the trust policy pins (Trust.KeyID).
var ErrPinnedKey = errors.New("runtime's receipt key is not the pinned one")

// ErrUnreachable is wrapped, beside the transport's error, when no answer
// came from the runtime: it is not running, not at the client's URL, or
// not reachable from here.
var ErrUnreachable = errors.New("runtime is unreachable")

// unreachableError is a request that got no answer from the runtime at url.
type unreachableError struct {
	url string
	err error
	// sent is false when no connection was made, so the runtime cannot
	// have seen the request.
	sent bool
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("runtime at %s is unreachable: %v", e.url, e.err)
}

func (e *unreachableError) Unwrap() []error { return []error{ErrUnreachable, e.err} }

// Options configure a Client.
type Options struct {
	// HTTPClient sends the requests; nil means a client with keep-alive
	// connections and sensible timeouts.
	HTTPClient *http.Client
	// OwnerToken authorises deploy, delete, list and token minting.
	OwnerToken string
	// Trust says which runtime identities to accept (platform, root
	// fingerprint, PCR allow-list, receipt key). The zero value accepts
	// AWS Nitro documents from any enclave.
	Trust api.Trust
	// AllowSimulated accepts SIMULATED attestation, for development. A
	// Trust block with AllowSimulated has the same effect.
	AllowSimulated bool
	// AllowDebug accepts Nitro enclaves in debug mode.
	AllowDebug bool
	// Plaintext sends inputs unsealed. The runtime accepts that only for
	// functions whose manifest allows it.
	Plaintext bool
	// SealOutput asks the runtime to seal each output back to the client
	// (only with sealed inputs): in the session, or, with SingleShot, to a
	// fresh reply key per run.
	SealOutput bool
	// SingleShot seals every input with its own HPKE context, as
	// seal.SealInput does. By default the client sets up one HPKE session
	// per function and runtime boot (seal.Session) and seals each input
	// with AES-256-GCM under it: the same guarantees (bound to the
	// function ID, the expected checksum and the boot; no replay), at
	// about 2 µs per input instead of about 150 µs of X25519.
	SingleShot bool
	// MaxAge bounds the age of an attestation document; zero means 5
	// minutes.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives warnings, such as a change of the runtime's keys
	// that the trust policy does not pin, and a move to another replica
	// (Info); nil means slog.Default().
	Logger *slog.Logger
	// FailoverTimeout bounds how long one call keeps trying the replicas
	// of a replicated runtime when none can serve it (unreachable, no
	// leader), within the caller's context; zero means 10 seconds.
	FailoverTimeout time.Duration
	// TLSRootCAs, if set, verifies https runtime URLs against these CAs
	// and the URL's host name, as a browser would, instead of pinning the
	// TLS key the attestation binds: for an operator's certificate, such
	// as a load balancer's that terminates TLS. The transport then trusts
	// these CAs, not the attestation (inputs are still sealed to the
	// attested key and receipts still verified). Nil pins the attested key.
	TLSRootCAs *x509.CertPool
}

// Identity is a runtime identity the client has verified.
type Identity struct {
	Platform   string
	Simulated  bool
	ReceiptKey ed25519.PublicKey
	KeyID      string
	HPKEKey    []byte
	Claims     *attest.Claims
	// Version and BootID come from the identity's JSON, not from the
	// attestation document. The boot ID names the runtime's current run;
	// inputs are sealed for it, and a wrong one only gets them refused.
	Version string
	BootID  []byte
	// ReplicaID is the attested ID of the replica that answered, for a
	// replicated runtime; empty for a single runtime.
	ReplicaID string
	// TLSKeySHA256 is the attested hash of the runtime's TLS key
	// (api.TLSKeyHash); nil when it serves plain HTTP. Over https the
	// client pins connections to it.
	TLSKeySHA256 []byte
}

// String describes the identity in one line; a SIMULATED identity says so
// first.
func (id *Identity) String() string {
	s := fmt.Sprintf("platform=%s key_id=%s root=%x", id.Platform, id.KeyID, id.Claims.RootFingerprint)
	if id.Simulated {
		s = "SIMULATED attestation (development only, no hardware guarantee): " + s
	}
	return s
}

// Client talks to one runtime: a single one, or the replicas of a
// replicated one.
type Client struct {
	hc    *http.Client
	opts  Options
	first string // the first URL given

	mu       sync.Mutex
	replicas []*replica // known replicas, in the order they are tried
	cur      int        // index of the current replica
	// keyID is the service identity, the receipt key of the first
	// identity verified: every replica must attest it once the client
	// knows more than one.
	keyID      string
	statements map[string]string // function ID → verified checksum
	sessions   map[sessionKey]*clientSession
}

// replica is one runtime URL and, once attested, its verified identity
// (guarded by Client.mu).
type replica struct {
	base     *url.URL
	url      string
	identity *Identity
	// learned marks a URL the client was redirected to (not_leader): it
	// is attested before anything, the owner credential included, is sent.
	learned bool
	tr      *transport
}

// sessionKey names a sealing session: one per runtime HPKE key, boot and
// function.
type sessionKey struct {
	hpke, boot           string
	functionID, checksum string
}

type clientSession struct {
	*seal.Session
	started time.Time
}

// sessionLifetime is how long a client uses one sealing session.
const sessionLifetime = time.Hour

// session returns the sealing session for ref under ident, setting one up
// if needed.
func (c *Client) session(ident *Identity, ref FunctionRef) (*seal.Session, error) {
	k := sessionKey{string(ident.HPKEKey), string(ident.BootID), ref.ID, ref.Checksum}
	now := time.Now()
	c.mu.Lock()
	cs := c.sessions[k]
	c.mu.Unlock()
	if cs != nil && now.Sub(cs.started) < sessionLifetime {
		return cs.Session, nil
	}
	s, err := seal.NewSession(ident.HPKEKey, ref.ID, ref.Checksum, ident.BootID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessions == nil || len(c.sessions) >= 1024 {
		c.sessions = map[sessionKey]*clientSession{}
	}
	live := map[[2]string]bool{{k.hpke, k.boot}: true} // keys and boots of the known replicas
	for _, r := range c.replicas {
		if r.identity != nil {
			live[[2]string{string(r.identity.HPKEKey), string(r.identity.BootID)}] = true
		}
	}
	for old, o := range c.sessions { // sessions of an older key or boot
		if !live[[2]string{old.hpke, old.boot}] || now.Sub(o.started) >= sessionLifetime {
			delete(c.sessions, old)
		}
	}
	c.sessions[k] = &clientSession{Session: s, started: now}
	return s, nil
}

// FunctionRef names a function and what the caller expects of it.
type FunctionRef struct {
	ID       string
	Checksum string
	Token    string
}

// lowerTrust returns t with its hex values (root fingerprint, key ID, PCR
// values) lower-cased, the form the runtime's documents use. It copies
// t.PCRs rather than change the caller's map.
func lowerTrust(t api.Trust) api.Trust {
	t.RootFingerprint = strings.ToLower(t.RootFingerprint)
	t.KeyID = strings.ToLower(t.KeyID)
	if t.PCRs != nil {
		pcrs := make(map[string][]string, len(t.PCRs))
		for k, vals := range t.PCRs {
			lower := make([]string, len(vals))
			for i, v := range vals {
				lower[i] = strings.ToLower(v)
			}
			pcrs[k] = lower
		}
		t.PCRs = pcrs
	}
	return t
}

// normalized returns r with its checksum lower-cased, or an error naming
// the field when it is not 64 hex digits.
func (r FunctionRef) normalized() (FunctionRef, error) {
	sum, err := api.NormalizeChecksum(r.Checksum)
	if err != nil {
		return r, fmt.Errorf("FunctionRef.Checksum: %w", err)
	}
	r.Checksum = sum
	return r, nil
}

// Result is a verified run.
type Result struct {
	Output  []byte
	Receipt receipt.Receipt
	// Sealed reports whether the input travelled sealed.
	Sealed bool
	// Log is the function's stderr, cut at its log limit. The runtime
	// returns it only for plaintext inputs, and the receipt does not
	// cover it.
	Log string
}

// Timeouts for calls whose context has no deadline.
const (
	DefaultTimeout = 30 * time.Second
	DeployTimeout  = 10 * time.Minute
)

// withTimeout bounds ctx by d unless it already has a deadline.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// NewHTTPClient returns the HTTP client Dial uses by default: keep-alive
// connections, up to 256 idle per runtime.
func NewHTTPClient() *http.Client {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	// No overall timeout here: each call sets its own (DefaultTimeout, or
	// DeployTimeout for deploys, which compile the module), unless the
	// caller's context already has a deadline.
	return &http.Client{Transport: tr}
}

// Dial connects to the runtime at rawURL and verifies its identity.
func Dial(ctx context.Context, rawURL string, opts Options) (*Client, error) {
	return DialReplicas(ctx, []string{rawURL}, opts)
}

// DialReplicas connects to the first replica of urls that answers and
// verifies its identity (NewReplicas).
func DialReplicas(ctx context.Context, urls []string, opts Options) (*Client, error) {
	c, err := NewReplicas(urls, opts)
	if err != nil {
		return nil, err
	}
	if _, err := c.Attest(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// New returns a client that attests lazily, on first use. Owner operations
// (deploy, list, delete, tokens) never need attestation. The hex values of
// opts.Trust may be in upper or lower case. An empty rawURL means
// DefaultURL.
func New(rawURL string, opts Options) (*Client, error) {
	return NewReplicas([]string{rawURL}, opts)
}

// MaxKnownReplicas bounds the replicas a client knows, those given and
// those it was redirected to.
const MaxKnownReplicas = 64

// NewReplicas returns a client for the replicas of one runtime at urls (as
// api.Ref.URLs lists them), tried in that order; like New, it attests
// lazily. Every replica must attest the same receipt key: Trust.KeyID if
// it is set, else the key of the first replica verified. No URLs means
// DefaultURL.
func NewReplicas(urls []string, opts Options) (*Client, error) {
	if len(urls) == 0 {
		urls = []string{""}
	}
	if len(urls) > MaxKnownReplicas {
		return nil, fmt.Errorf("%d runtime URLs; at most %d", len(urls), MaxKnownReplicas)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = NewHTTPClient()
	}
	c := &Client{statements: map[string]string{}, hc: opts.HTTPClient, opts: opts}
	seen := map[string]bool{}
	for _, raw := range urls {
		u, err := parseRuntimeURL(raw)
		if err != nil {
			return nil, err
		}
		if seen[u.String()] {
			return nil, fmt.Errorf("runtime URL %q is listed twice", u.String())
		}
		seen[u.String()] = true
		tr, err := c.newTransport(u)
		if err != nil {
			return nil, err
		}
		c.replicas = append(c.replicas, &replica{base: u, url: u.String(), tr: tr})
	}
	c.first = c.replicas[0].url
	opts.Trust = lowerTrust(opts.Trust)
	if err := opts.Trust.Check(); err != nil {
		return nil, err
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.FailoverTimeout <= 0 {
		opts.FailoverTimeout = 10 * time.Second
	}
	c.hc, c.opts = opts.HTTPClient, opts
	return c, nil
}

// parseRuntimeURL checks a runtime's base URL; "" means DefaultURL.
func parseRuntimeURL(rawURL string) (*url.URL, error) {
	if rawURL == "" {
		rawURL = DefaultURL
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("runtime URL %q is not an http(s) URL such as %s", rawURL, DefaultURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// URL returns the runtime's base URL: the first one the client was given.
func (c *Client) URL() string { return c.first }

// Replica returns the base URL of the replica the client uses now.
func (c *Client) Replica() string { return c.current().url }

// URLs returns the base URLs of every replica the client knows, in the
// order it tries them: those it was given, then those it was redirected to.
func (c *Client) URLs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.replicas))
	for i, r := range c.replicas {
		out[i] = r.url
	}
	return out
}

// Cached returns the current replica's verified identity if the client has
// one, without any network call.
func (c *Client) Cached() *Identity {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replicas[c.cur].identity
}

// Identity returns the verified identity of the current replica, attesting
// first if needed (and moving to another replica if this one cannot
// answer).
func (c *Client) Identity(ctx context.Context) (*Identity, error) {
	var id *Identity
	err := c.call(ctx, true, func(rep *replica) (err error) {
		id, err = c.identityOf(ctx, rep)
		return err
	})
	return id, err
}

// Attest fetches and verifies the current replica's identity with a fresh
// nonce, replacing the cached one (moving to another replica if this one
// cannot answer).
func (c *Client) Attest(ctx context.Context) (*Identity, error) {
	var id *Identity
	err := c.call(ctx, true, func(rep *replica) (err error) {
		id, err = c.attestReplica(ctx, rep)
		return err
	})
	return id, err
}

// identityOf returns rep's verified identity, attesting it if needed.
func (c *Client) identityOf(ctx context.Context, rep *replica) (*Identity, error) {
	c.mu.Lock()
	id := rep.identity
	c.mu.Unlock()
	if id != nil {
		return id, nil
	}
	return c.attestReplica(ctx, rep)
}

// attestReplica fetches and verifies rep's identity with a fresh nonce and
// caches it.
func (c *Client) attestReplica(ctx context.Context, rep *replica) (*Identity, error) {
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	var wire api.Identity
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rep.url+"/v1/identity?nonce="+base64.RawURLEncoding.EncodeToString(nonce), nil)
	if err != nil {
		return nil, err
	}
	var presented []byte
	if err := c.sendOn(rep, rep.tr.attestHC, req, &presented, func(data []byte) error { return json.Unmarshal(data, &wire) }); err != nil {
		if ue := (*unreachableError)(nil); errors.As(err, &ue) {
			ue.sent = false // only this read went out: the call may go elsewhere
		}
		return nil, fmt.Errorf("fetching the runtime's identity: %w", err)
	}
	id, err := c.verifyIdentity(rep, &wire, nonce)
	if err == nil {
		err = checkTLSBinding(rep, id.TLSKeySHA256, presented)
	}
	if err != nil {
		return nil, &attestError{err}
	}
	c.mu.Lock()
	if len(c.replicas) > 1 && c.keyID != "" && id.KeyID != c.keyID {
		set := c.keyID
		c.mu.Unlock()
		return nil, &attestError{fmt.Errorf("%w: runtime at %s attests receipt key %s, but the replicas this client verified first attest %s: "+
			"it is not a replica of the same service (every replica of a runtime attests the same key)", ErrPinnedKey, rep.url, id.KeyID, set)}
	}
	old := rep.identity
	if old != nil && old.KeyID != id.KeyID {
		c.statements = map[string]string{} // statements were under the old key
	}
	c.keyID = id.KeyID
	rep.identity = id
	if rep.tr.pinned {
		pin := bytes.Clone(id.TLSKeySHA256)
		rep.tr.pin.Store(&pin)
	}
	c.mu.Unlock()
	switch {
	case old == nil:
	case old.KeyID != id.KeyID:
		// Only possible without a pin, on a single runtime: verifyIdentity
		// refuses a key other than a pinned one.
		c.opts.Logger.Warn("the runtime's receipt key changed; trusting the new key because its attestation passes the trust policy (pin trust.key_id to refuse key changes)",
			"runtime", rep.url, "old_key_id", old.KeyID, "new_key_id", id.KeyID, "platform", id.Platform)
	case !bytes.Equal(old.HPKEKey, id.HPKEKey):
		c.opts.Logger.Warn("the runtime's HPKE key changed; sealing inputs to the newly attested key",
			"runtime", rep.url, "key_id", id.KeyID, "platform", id.Platform)
	case !bytes.Equal(old.BootID, id.BootID):
		c.opts.Logger.Info("the runtime restarted (new boot ID)", "runtime", rep.url, "boot_id", hex.EncodeToString(id.BootID))
	}
	return id, nil
}

// refresh attests rep again after a run failed in a way that a change of the
// runtime's keys or boot explains, unless another call already replaced the
// identity used, and returns the current identity.
func (c *Client) refresh(ctx context.Context, rep *replica, used *Identity) (*Identity, error) {
	c.mu.Lock()
	cur := rep.identity
	c.mu.Unlock()
	if cur != nil && cur != used {
		return cur, nil
	}
	return c.attestReplica(ctx, rep)
}

func (c *Client) verifyIdentity(rep *replica, wire *api.Identity, nonce []byte) (*Identity, error) {
	t := c.opts.Trust
	pcrs, err := t.PCRValues()
	if err != nil {
		return nil, err
	}
	var rootFP []byte
	if t.RootFingerprint != "" {
		rootFP, _ = hex.DecodeString(t.RootFingerprint)
	}
	policy := attest.Policy{
		AllowSimulated:  c.opts.AllowSimulated || (t.AllowSimulated && t.Platform == attest.PlatformSimulated),
		AllowDebug:      c.opts.AllowDebug,
		Nonce:           nonce,
		MaxAge:          c.opts.MaxAge,
		PCRs:            pcrs,
		RootFingerprint: rootFP,
		Now:             c.opts.Now,
	}
	claims, err := attest.Verify(wire.Attestation, policy)
	if err != nil {
		if errors.Is(err, attest.ErrSimulated) {
			return nil, fmt.Errorf("runtime at %s: %w", rep.url, err)
		}
		return nil, fmt.Errorf("runtime at %s failed attestation: %w", rep.url, err)
	}
	if t.Platform != "" && claims.Platform != t.Platform {
		return nil, fmt.Errorf("runtime at %s attests as %s, but the trust policy expects %s", rep.url, claims.Platform, t.Platform)
	}
	b, err := api.ParseIdentityBinding(claims.UserData)
	if err != nil {
		return nil, fmt.Errorf("runtime at %s: %w", rep.url, err)
	}
	rk, hk, replicaID := b.ReceiptKey, b.HPKEKey, b.ReplicaID
	if subtle.ConstantTimeCompare(rk, claims.PublicKey) != 1 {
		return nil, fmt.Errorf("runtime at %s: attestation public_key and user_data name different receipt keys", rep.url)
	}
	id := &Identity{
		Platform:     claims.Platform,
		Simulated:    claims.Simulated,
		ReceiptKey:   ed25519.PublicKey(rk),
		KeyID:        receipt.KeyID(rk),
		HPKEKey:      hk,
		Claims:       claims,
		Version:      wire.Version,
		BootID:       wire.BootID,
		ReplicaID:    replicaID,
		TLSKeySHA256: b.TLSKeySHA256,
	}
	if replicaID != wire.ReplicaID {
		return nil, fmt.Errorf("runtime at %s: its identity says replica %q but its attestation binds replica %q", rep.url, wire.ReplicaID, replicaID)
	}
	if t.KeyID != "" && t.KeyID != id.KeyID {
		return nil, fmt.Errorf("%w: runtime at %s attests receipt key %s, but the trust policy pins %s; its keys changed, or it is another runtime "+
			"(if the change was intended, use a reference minted since, or pin the new key in Trust.KeyID)",
			ErrPinnedKey, rep.url, id.KeyID, t.KeyID)
	}
	return id, nil
}

// Deploy uploads a bundle. name overrides the manifest's name.
func (c *Client) Deploy(ctx context.Context, b *bundle.Bundle, name string) (*api.Deployed, error) {
	path := "/v1/functions"
	if name != "" {
		path += "?name=" + url.QueryEscape(name)
	}
	ctx, cancel := withTimeout(ctx, DeployTimeout)
	defer cancel()
	body := b.Encode()
	var out api.Deployed
	if err := c.call(ctx, false, func(rep *replica) error {
		return c.do(ctx, rep, http.MethodPost, path, body, api.ContentTypeBundle, c.opts.OwnerToken, &out)
	}); err != nil {
		return nil, err
	}
	if out.FunctionChecksum != b.Checksum() {
		return nil, fmt.Errorf("runtime reports checksum %s for the bundle, but it is %s", out.FunctionChecksum, b.Checksum())
	}
	return &out, nil
}

// List lists the deployed functions.
func (c *Client) List(ctx context.Context) ([]api.Function, error) {
	var out api.FunctionList
	if err := c.call(ctx, true, func(rep *replica) error {
		return c.do(ctx, rep, http.MethodGet, "/v1/functions", nil, "", c.opts.OwnerToken, &out)
	}); err != nil {
		return nil, err
	}
	return out.Functions, nil
}

// Delete removes a function.
func (c *Client) Delete(ctx context.Context, id string) error {
	return c.call(ctx, false, func(rep *replica) error {
		return c.do(ctx, rep, http.MethodDelete, "/v1/functions/"+url.PathEscape(id), nil, "", c.opts.OwnerToken, nil)
	})
}

// MintToken asks for a function token valid for ttl. checksum may be in
// upper or lower case (api.NormalizeChecksum).
func (c *Client) MintToken(ctx context.Context, id, checksum string, ttl time.Duration) (*api.TokenResponse, error) {
	checksum, err := api.NormalizeChecksum(checksum)
	if err != nil {
		return nil, fmt.Errorf("minting a token for function %s: %w", id, err)
	}
	body, _ := json.Marshal(api.TokenRequest{FunctionChecksum: checksum, Expiry: ttl.String()})
	var out api.TokenResponse
	if err := c.call(ctx, false, func(rep *replica) error {
		return c.do(ctx, rep, http.MethodPost, "/v1/functions/"+url.PathEscape(id)+"/tokens", body, "application/json", c.opts.OwnerToken, &out)
	}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Revoke revokes a function token.
func (c *Client) Revoke(ctx context.Context, functionToken string) error {
	body, _ := json.Marshal(api.RevokeRequest{FunctionToken: functionToken})
	return c.call(ctx, false, func(rep *replica) error {
		return c.do(ctx, rep, http.MethodPost, "/v1/tokens/revoke", body, "application/json", c.opts.OwnerToken, nil)
	})
}

// Function fetches a function's description and verifies its signed
// statement under the attested receipt key.
func (c *Client) Function(ctx context.Context, id string) (*api.Function, error) {
	var f *api.Function
	err := c.call(ctx, true, func(rep *replica) (err error) {
		f, err = c.functionOn(ctx, rep, id)
		return err
	})
	return f, err
}

// functionOn is Function on replica rep.
func (c *Client) functionOn(ctx context.Context, rep *replica, id string) (*api.Function, error) {
	ident, err := c.identityOf(ctx, rep)
	if err != nil {
		return nil, err
	}
	var f api.Function
	if err := c.do(ctx, rep, http.MethodGet, "/v1/functions/"+url.PathEscape(id), nil, "", "", &f); err != nil {
		return nil, err
	}
	st := f.Statement
	if st.FunctionID != id || st.FunctionChecksum != f.FunctionChecksum {
		return nil, fmt.Errorf("runtime's statement is about %s/%s, not function %s/%s", st.FunctionID, st.FunctionChecksum, id, f.FunctionChecksum)
	}
	if st.KeyID != ident.KeyID {
		// Signed by a key this client has not attested: the runtime's key
		// may have changed. Attest again, once.
		if ident, err = c.refresh(ctx, rep, ident); err != nil {
			return nil, err
		}
	}
	if err := st.Verify(ident.ReceiptKey); err != nil {
		if st.KeyID != ident.KeyID {
			return nil, fmt.Errorf("statement for function %s: %w (it names key %s, but the runtime attests key %s)", id, err, st.KeyID, ident.KeyID)
		}
		return nil, fmt.Errorf("statement for function %s: %w", id, err)
	}
	return &f, nil
}

// CheckFunction verifies that function ref.ID has checksum ref.Checksum,
// trusting only the runtime's signed statement. The result is cached.
func (c *Client) CheckFunction(ctx context.Context, ref FunctionRef) error {
	ref, err := ref.normalized()
	if err != nil {
		return err
	}
	c.mu.Lock()
	got, ok := c.statements[ref.ID]
	c.mu.Unlock()
	if !ok {
		f, err := c.Function(ctx, ref.ID)
		if err != nil {
			return err
		}
		got = f.Statement.FunctionChecksum
		c.mu.Lock()
		c.statements[ref.ID] = got
		c.mu.Unlock()
	}
	if got != ref.Checksum {
		return fmt.Errorf("%w: deployed %s, expected %s", ErrChecksumMismatch, got, ref.Checksum)
	}
	return nil
}

// Run checks the function's checksum, sends input (sealed unless
// Options.Plaintext) and returns the verified output and receipt. If the
// runtime refuses a sealed input because it was sealed for an earlier boot
// (stale_boot) or cannot open it (bad_sealed_input), Run attests again and,
// if the runtime's HPKE key or boot ID has indeed changed, retries once.
//
// With replicas, Run moves to another replica when the current one cannot
// take the input (see failover.go), and seals the input again for that
// replica's key and boot: the same sealed bytes are never sent twice. Like
// the stale_boot retry, it re-sends an input only when the runtime cannot
// have run it: no connection was made, or a replica refused it
// (not_leader, no_leader, unavailable). If the connection broke after the
// input was sent, Run returns the error (wrapping ErrUnreachable), as
// before, and the next call starts on the next replica: a run is done at
// most once per call, and the caller decides whether to try again.
func (c *Client) Run(ctx context.Context, ref FunctionRef, input []byte) (*Result, error) {
	ref, err := ref.normalized()
	if err != nil {
		return nil, err
	}
	if ref.Token != "" {
		// Refuse before anything is sent, the statement's read included.
		if err := checkCleartext(c.current(), "function token"); err != nil {
			return nil, err
		}
	}
	if err := c.CheckFunction(ctx, ref); err != nil {
		return nil, err
	}
	var res *Result
	err = c.call(ctx, false, func(rep *replica) (err error) {
		res, err = c.runOn(ctx, rep, ref, input)
		return err
	})
	return res, err
}

// runOn is Run on replica rep.
func (c *Client) runOn(ctx context.Context, rep *replica, ref FunctionRef, input []byte) (*Result, error) {
	ident, err := c.identityOf(ctx, rep)
	if err != nil {
		return nil, err
	}
	res, err := c.runWith(ctx, rep, ident, ref, input)
	var ae *api.Error
	if err == nil || c.opts.Plaintext || !errors.As(err, &ae) || (ae.Code != api.CodeStaleBoot && ae.Code != api.CodeSealedInput) {
		return res, err
	}
	// A key change or a restart explains this failure only if the identity
	// has changed since the input was sealed.
	fresh, aerr := c.refresh(ctx, rep, ident)
	if aerr != nil {
		return nil, fmt.Errorf("the runtime refused the sealed input (%v), and attesting it again failed: %w", err, aerr)
	}
	if bytes.Equal(fresh.HPKEKey, ident.HPKEKey) && bytes.Equal(fresh.BootID, ident.BootID) {
		return nil, err
	}
	if err := c.CheckFunction(ctx, ref); err != nil {
		return nil, err
	}
	return c.runWith(ctx, rep, fresh, ref, input)
}

// runWith seals input to ident, sends it to rep and verifies the answer.
func (c *Client) runWith(ctx context.Context, rep *replica, ident *Identity, ref FunctionRef, input []byte) (_ *Result, err error) {
	body, ctype := input, api.ContentTypePlain
	var reply *seal.PrivateKey
	var sess *seal.Session
	var counter uint64
	if !c.opts.Plaintext && !c.opts.SingleShot {
		if len(ident.BootID) != seal.BootIDSize {
			return nil, fmt.Errorf("runtime at %s publishes no boot_id in its identity: it is older than this client; upgrade the runtime", rep.url)
		}
		if sess, err = c.session(ident, ref); err != nil {
			return nil, err
		}
		if body, counter, err = sess.Seal(input, &seal.SessionInputOptions{SealOutput: c.opts.SealOutput, IssuedAt: c.opts.Now()}); err != nil {
			return nil, err
		}
		ctype = api.ContentTypeSession
	} else if !c.opts.Plaintext {
		if len(ident.BootID) != seal.BootIDSize {
			return nil, fmt.Errorf("runtime at %s publishes no boot_id in its identity: it is older than this client; upgrade the runtime", rep.url)
		}
		opts := &seal.InputOptions{BootID: ident.BootID, IssuedAt: c.opts.Now()}
		if c.opts.SealOutput {
			if reply, err = seal.GenerateKey(); err != nil {
				return nil, err
			}
			opts.ReplyKey = reply.PublicKey()
		}
		if body, err = seal.SealInput(ident.HPKEKey, ref.ID, ref.Checksum, input, opts); err != nil {
			return nil, err
		}
		ctype = api.ContentTypeSealed
	}
	var res api.RunResult
	if err := c.doRun(ctx, rep, ref, body, ctype, &res); err != nil {
		return nil, err
	}
	// The runtime ran the input: whatever fails from here on, the call
	// must not send it to another replica.
	defer func() {
		if err != nil {
			err = &ranError{err}
		}
	}()
	in := sha256.Sum256(input)
	output := res.Output
	if sess != nil && c.opts.SealOutput {
		if res.SealedOutput == nil {
			return nil, fmt.Errorf("%w: runtime returned the output unsealed although the input asked for it sealed", ErrReceipt)
		}
		if output, err = sess.OpenOutput(counter, in, res.SealedOutput); err != nil {
			return nil, fmt.Errorf("opening the sealed output: %w", err)
		}
	} else if reply != nil {
		if res.SealedOutput == nil {
			return nil, fmt.Errorf("%w: runtime returned the output unsealed although a reply key was given", ErrReceipt)
		}
		if output, err = reply.OpenOutput(ref.ID, ref.Checksum, in, res.SealedOutput); err != nil {
			return nil, fmt.Errorf("opening the sealed output: %w", err)
		}
	} else if res.SealedOutput != nil {
		return nil, fmt.Errorf("%w: runtime sealed the output although no reply key was given", ErrReceipt)
	}
	if err := c.verifyReceipt(ctx, rep, ident, &res.Receipt, ref, in, output); err != nil {
		return nil, err
	}
	if output == nil {
		output = []byte{}
	}
	return &Result{Output: output, Receipt: res.Receipt, Sealed: !c.opts.Plaintext, Log: res.Log}, nil
}

func (c *Client) verifyReceipt(ctx context.Context, rep *replica, ident *Identity, r *receipt.Receipt, ref FunctionRef, in [32]byte, output []byte) error {
	if r.KeyID != ident.KeyID {
		// The runtime's key may have changed: attest again, once, then
		// check under whatever key it attests now.
		var err error
		if ident, err = c.refresh(ctx, rep, ident); err != nil {
			return err
		}
	}
	if err := r.Verify(ident.ReceiptKey); err != nil {
		return fmt.Errorf("%w: %v (the runtime attests key %s)", ErrReceipt, err, ident.KeyID)
	}
	out := sha256.Sum256(output)
	switch {
	case r.FunctionID != ref.ID:
		return fmt.Errorf("%w: it is for function %s, not %s", ErrReceipt, r.FunctionID, ref.ID)
	case r.FunctionChecksum != ref.Checksum:
		return fmt.Errorf("%w: it names checksum %s, expected %s", ErrReceipt, r.FunctionChecksum, ref.Checksum)
	case !isHexOf(r.InputSHA256, &in):
		return fmt.Errorf("%w: it is for another input", ErrReceipt)
	case !isHexOf(r.OutputSHA256, &out):
		return fmt.Errorf("%w: it is for another output", ErrReceipt)
	}
	return nil
}

// isHexOf reports whether s is sum in lowercase hex, without allocating.
func isHexOf(s string, sum *[32]byte) bool {
	var b [64]byte
	hex.Encode(b[:], sum[:])
	return s == string(b[:])
}

func (c *Client) doRun(ctx context.Context, rep *replica, ref FunctionRef, body []byte, ctype string, out *api.RunResult) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rep.url+"/v1/functions/"+url.PathEscape(ref.ID)+"/run", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set(api.HeaderChecksum, ref.Checksum)
	if ref.Token != "" {
		if err := checkCleartext(rep, "function token"); err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+ref.Token)
	}
	return c.send(rep, req, func(data []byte) error { return decodeRunResult(data, out) })
}

// do sends a request to rep and decodes a JSON answer into out (if not
// nil).
func (c *Client) do(ctx context.Context, rep *replica, method, path string, body []byte, ctype, cred string, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rep.url+path, rd)
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if cred != "" {
		if err := checkCleartext(rep, "owner credential"); err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	var decode func([]byte) error
	if out != nil {
		decode = func(data []byte) error { return json.Unmarshal(data, out) }
	}
	return c.send(rep, req, decode)
}

// maxResponse bounds a response body: a 64 MiB output in base64 plus room.
const maxResponse = 96 << 20

// send sends req to rep over its pinned transport, attesting rep first if
// its TLS key is not pinned yet (nothing goes out before), and once more if
// it presents another key (it may have restarted with a new one).
func (c *Client) send(rep *replica, req *http.Request, decode func([]byte) error) error {
	if rep.tr.pinned && rep.tr.pinnedKey() == nil {
		if req.Body == nil && req.Header.Get("Authorization") == "" {
			// A read that carries nothing secret (its answer is
			// verified on its own, like a signed statement): it may go
			// before the key is pinned, on a connection of its own.
			return c.sendOn(rep, rep.tr.attestHC, req, nil, decode)
		}
		if _, err := c.attestReplica(req.Context(), rep); err != nil {
			return err
		}
	}
	err := c.sendOn(rep, rep.tr.hc, req, nil, decode)
	var ke *tlsKeyError
	if !rep.tr.pinned || !errors.As(err, &ke) {
		return err
	}
	old := rep.tr.pinnedKey()
	if _, aerr := c.attestReplica(req.Context(), rep); aerr != nil {
		return fmt.Errorf("%w; attesting it again: %w", err, aerr)
	}
	if bytes.Equal(old, rep.tr.pinnedKey()) {
		return err
	}
	c.opts.Logger.Info("the runtime's TLS key changed; pinned the newly attested key", "runtime", rep.url, "tls_key_sha256", hex.EncodeToString(rep.tr.pinnedKey()))
	if req.GetBody != nil {
		body, gerr := req.GetBody()
		if gerr != nil {
			return err
		}
		req = req.Clone(req.Context())
		req.Body = body
	}
	return c.sendOn(rep, rep.tr.hc, req, nil, decode)
}

// sendOn sends req with hc and decodes a 2xx answer; presented, if not
// nil, receives the api.TLSKeyHash of the certificate the answer came with.
func (c *Client) sendOn(rep *replica, hc *http.Client, req *http.Request, presented *[]byte, decode func([]byte) error) error {
	ctx, cancel := withTimeout(req.Context(), DefaultTimeout)
	defer cancel()
	resp, err := hc.Do(req.WithContext(ctx))
	if err != nil {
		var ke *tlsKeyError
		return &unreachableError{url: rep.url, err: err, sent: !dialFailed(err) && !errors.As(err, &ke)}
	}
	defer resp.Body.Close()
	if presented != nil && resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		*presented = api.TLSKeyHash(resp.TLS.PeerCertificates[0])
	}
	data, err := readBody(resp)
	if err != nil {
		return fmt.Errorf("reading the runtime's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var er api.ErrorResponse
		if json.Unmarshal(data, &er) == nil && er.Error != nil && er.Error.Message != "" {
			er.Error.Status = resp.StatusCode
			return er.Error
		}
		if resp.StatusCode == http.StatusBadRequest && req.URL.Scheme == "http" && bytes.Contains(data, []byte("HTTP request to an HTTPS server")) {
			return &api.Error{Status: resp.StatusCode, Code: api.CodeBadRequest, Message: fmt.Sprintf("runtime at %s serves HTTPS, not plain HTTP", rep.url),
				Hint: "use its https:// URL (vouch enclave serves HTTPS unless --insecure-http)"}
		}
		return &api.Error{Status: resp.StatusCode, Code: api.CodeInternal, Message: fmt.Sprintf("runtime answered %s", resp.Status)}
	}
	if decode == nil {
		return nil
	}
	if err := decode(data); err != nil {
		return fmt.Errorf("runtime's answer is not valid JSON: %w", err)
	}
	return nil
}

// readBody reads at most maxResponse bytes of a response, into a buffer of
// the announced length when there is one.
func readBody(resp *http.Response) ([]byte, error) {
	n := resp.ContentLength
	if n >= maxResponse {
		n = 0
	}
	return readall.Sized(io.LimitReader(resp.Body, maxResponse), n)
}

// Close releases idle connections.
func (c *Client) Close() {
	c.hc.CloseIdleConnections()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.replicas {
		r.tr.hc.CloseIdleConnections()
	}
}
