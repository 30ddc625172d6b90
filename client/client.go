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
package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
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
const DefaultURL = "http://127.0.0.1:7070"

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
	// that the trust policy does not pin; nil means slog.Default().
	Logger *slog.Logger
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

// Client talks to one runtime.
type Client struct {
	base *url.URL
	hc   *http.Client
	opts Options

	mu         sync.Mutex
	identity   *Identity
	statements map[string]string // function ID → verified checksum
	sessions   map[sessionKey]*clientSession
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
	for old, o := range c.sessions { // sessions of an older key or boot
		if old.hpke != k.hpke || old.boot != k.boot || now.Sub(o.started) >= sessionLifetime {
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
	c, err := New(rawURL, opts)
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
// opts.Trust may be in upper or lower case.
func New(rawURL string, opts Options) (*Client, error) {
	if rawURL == "" {
		rawURL = DefaultURL
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("runtime URL %q is not an http(s) URL such as %s", rawURL, DefaultURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	opts.Trust = lowerTrust(opts.Trust)
	if err := opts.Trust.Check(); err != nil {
		return nil, err
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = NewHTTPClient()
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
	return &Client{base: u, hc: opts.HTTPClient, opts: opts, statements: map[string]string{}}, nil
}

// URL returns the runtime's base URL.
func (c *Client) URL() string { return c.base.String() }

// Cached returns the verified identity if the client has one, without any
// network call.
func (c *Client) Cached() *Identity {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.identity
}

// Identity returns the verified identity, attesting first if needed.
func (c *Client) Identity(ctx context.Context) (*Identity, error) {
	c.mu.Lock()
	id := c.identity
	c.mu.Unlock()
	if id != nil {
		return id, nil
	}
	return c.Attest(ctx)
}

// Attest fetches and verifies the runtime's identity with a fresh nonce,
// replacing the cached one.
func (c *Client) Attest(ctx context.Context) (*Identity, error) {
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	var wire api.Identity
	if err := c.do(ctx, http.MethodGet, "/v1/identity?nonce="+base64.RawURLEncoding.EncodeToString(nonce), nil, "", "", &wire); err != nil {
		return nil, fmt.Errorf("fetching the runtime's identity: %w", err)
	}
	id, err := c.verifyIdentity(&wire, nonce)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	old := c.identity
	if old != nil && old.KeyID != id.KeyID {
		c.statements = map[string]string{} // statements were under the old key
	}
	c.identity = id
	c.mu.Unlock()
	switch {
	case old == nil:
	case old.KeyID != id.KeyID:
		// Only possible without a pin: verifyIdentity refuses a key other
		// than a pinned one.
		c.opts.Logger.Warn("the runtime's receipt key changed; trusting the new key because its attestation passes the trust policy (pin trust.key_id to refuse key changes)",
			"runtime", c.base.String(), "old_key_id", old.KeyID, "new_key_id", id.KeyID, "platform", id.Platform)
	case !bytes.Equal(old.HPKEKey, id.HPKEKey):
		c.opts.Logger.Warn("the runtime's HPKE key changed; sealing inputs to the newly attested key",
			"runtime", c.base.String(), "key_id", id.KeyID, "platform", id.Platform)
	case !bytes.Equal(old.BootID, id.BootID):
		c.opts.Logger.Info("the runtime restarted (new boot ID)", "runtime", c.base.String(), "boot_id", hex.EncodeToString(id.BootID))
	}
	return id, nil
}

// refresh attests again after a run failed in a way that a change of the
// runtime's keys or boot explains, unless another call already replaced the
// identity used, and returns the current identity.
func (c *Client) refresh(ctx context.Context, used *Identity) (*Identity, error) {
	c.mu.Lock()
	cur := c.identity
	c.mu.Unlock()
	if cur != nil && cur != used {
		return cur, nil
	}
	return c.Attest(ctx)
}

func (c *Client) verifyIdentity(wire *api.Identity, nonce []byte) (*Identity, error) {
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
			return nil, fmt.Errorf("runtime at %s: %w", c.base, err)
		}
		return nil, fmt.Errorf("runtime at %s failed attestation: %w", c.base, err)
	}
	if t.Platform != "" && claims.Platform != t.Platform {
		return nil, fmt.Errorf("runtime at %s attests as %s, but the trust policy expects %s", c.base, claims.Platform, t.Platform)
	}
	rk, hk, replicaID, err := api.ParseIdentityUserData(claims.UserData)
	if err != nil {
		return nil, fmt.Errorf("runtime at %s: %w", c.base, err)
	}
	if subtle.ConstantTimeCompare(rk, claims.PublicKey) != 1 {
		return nil, fmt.Errorf("runtime at %s: attestation public_key and user_data name different receipt keys", c.base)
	}
	id := &Identity{
		Platform:   claims.Platform,
		Simulated:  claims.Simulated,
		ReceiptKey: ed25519.PublicKey(rk),
		KeyID:      receipt.KeyID(rk),
		HPKEKey:    hk,
		Claims:     claims,
		Version:    wire.Version,
		BootID:     wire.BootID,
		ReplicaID:  replicaID,
	}
	if replicaID != wire.ReplicaID {
		return nil, fmt.Errorf("runtime at %s: its identity says replica %q but its attestation binds replica %q", c.base, wire.ReplicaID, replicaID)
	}
	if t.KeyID != "" && t.KeyID != id.KeyID {
		return nil, fmt.Errorf("%w: runtime at %s attests receipt key %s, but the trust policy pins %s; its keys changed, or it is another runtime "+
			"(if the change was intended, use a reference minted since, or pin the new key in Trust.KeyID)",
			ErrPinnedKey, c.base, id.KeyID, t.KeyID)
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
	var out api.Deployed
	if err := c.do(ctx, http.MethodPost, path, b.Encode(), api.ContentTypeBundle, c.opts.OwnerToken, &out); err != nil {
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
	if err := c.do(ctx, http.MethodGet, "/v1/functions", nil, "", c.opts.OwnerToken, &out); err != nil {
		return nil, err
	}
	return out.Functions, nil
}

// Delete removes a function.
func (c *Client) Delete(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/functions/"+url.PathEscape(id), nil, "", c.opts.OwnerToken, nil)
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
	if err := c.do(ctx, http.MethodPost, "/v1/functions/"+url.PathEscape(id)+"/tokens", body, "application/json", c.opts.OwnerToken, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Revoke revokes a function token.
func (c *Client) Revoke(ctx context.Context, functionToken string) error {
	body, _ := json.Marshal(api.RevokeRequest{FunctionToken: functionToken})
	return c.do(ctx, http.MethodPost, "/v1/tokens/revoke", body, "application/json", c.opts.OwnerToken, nil)
}

// Function fetches a function's description and verifies its signed
// statement under the attested receipt key.
func (c *Client) Function(ctx context.Context, id string) (*api.Function, error) {
	ident, err := c.Identity(ctx)
	if err != nil {
		return nil, err
	}
	var f api.Function
	if err := c.do(ctx, http.MethodGet, "/v1/functions/"+url.PathEscape(id), nil, "", "", &f); err != nil {
		return nil, err
	}
	st := f.Statement
	if st.FunctionID != id || st.FunctionChecksum != f.FunctionChecksum {
		return nil, fmt.Errorf("runtime's statement is about %s/%s, not function %s/%s", st.FunctionID, st.FunctionChecksum, id, f.FunctionChecksum)
	}
	if st.KeyID != ident.KeyID {
		// Signed by a key this client has not attested: the runtime's key
		// may have changed. Attest again, once.
		if ident, err = c.refresh(ctx, ident); err != nil {
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
func (c *Client) Run(ctx context.Context, ref FunctionRef, input []byte) (*Result, error) {
	ref, err := ref.normalized()
	if err != nil {
		return nil, err
	}
	if err := c.CheckFunction(ctx, ref); err != nil {
		return nil, err
	}
	ident, err := c.Identity(ctx)
	if err != nil {
		return nil, err
	}
	res, err := c.runWith(ctx, ident, ref, input)
	var ae *api.Error
	if err == nil || c.opts.Plaintext || !errors.As(err, &ae) || (ae.Code != api.CodeStaleBoot && ae.Code != api.CodeSealedInput) {
		return res, err
	}
	// A key change or a restart explains this failure only if the identity
	// has changed since the input was sealed.
	fresh, aerr := c.refresh(ctx, ident)
	if aerr != nil {
		return nil, fmt.Errorf("the runtime refused the sealed input (%v), and attesting it again failed: %w", err, aerr)
	}
	if bytes.Equal(fresh.HPKEKey, ident.HPKEKey) && bytes.Equal(fresh.BootID, ident.BootID) {
		return nil, err
	}
	if err := c.CheckFunction(ctx, ref); err != nil {
		return nil, err
	}
	return c.runWith(ctx, fresh, ref, input)
}

// runWith seals input to ident, sends it and verifies the answer.
func (c *Client) runWith(ctx context.Context, ident *Identity, ref FunctionRef, input []byte) (*Result, error) {
	body, ctype := input, api.ContentTypePlain
	var reply *seal.PrivateKey
	var sess *seal.Session
	var counter uint64
	var err error
	if !c.opts.Plaintext && !c.opts.SingleShot {
		if len(ident.BootID) != seal.BootIDSize {
			return nil, fmt.Errorf("runtime at %s publishes no boot_id in its identity: it is older than this client; upgrade the runtime", c.base)
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
			return nil, fmt.Errorf("runtime at %s publishes no boot_id in its identity: it is older than this client; upgrade the runtime", c.base)
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
	if err := c.doRun(ctx, ref, body, ctype, &res); err != nil {
		return nil, err
	}
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
	if err := c.verifyReceipt(ctx, ident, &res.Receipt, ref, in, output); err != nil {
		return nil, err
	}
	if output == nil {
		output = []byte{}
	}
	return &Result{Output: output, Receipt: res.Receipt, Sealed: !c.opts.Plaintext, Log: res.Log}, nil
}

func (c *Client) verifyReceipt(ctx context.Context, ident *Identity, r *receipt.Receipt, ref FunctionRef, in [32]byte, output []byte) error {
	if r.KeyID != ident.KeyID {
		// The runtime's key may have changed: attest again, once, then
		// check under whatever key it attests now.
		var err error
		if ident, err = c.refresh(ctx, ident); err != nil {
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
	case r.InputSHA256 != hex.EncodeToString(in[:]):
		return fmt.Errorf("%w: it is for another input", ErrReceipt)
	case r.OutputSHA256 != hex.EncodeToString(out[:]):
		return fmt.Errorf("%w: it is for another output", ErrReceipt)
	}
	return nil
}

func (c *Client) doRun(ctx context.Context, ref FunctionRef, body []byte, ctype string, out *api.RunResult) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.String()+"/v1/functions/"+url.PathEscape(ref.ID)+"/run", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set(api.HeaderChecksum, ref.Checksum)
	if ref.Token != "" {
		req.Header.Set("Authorization", "Bearer "+ref.Token)
	}
	return c.send(req, func(data []byte) error { return decodeRunResult(data, out) })
}

// do sends a request and decodes a JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, body []byte, ctype, cred string, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	var decode func([]byte) error
	if out != nil {
		decode = func(data []byte) error { return json.Unmarshal(data, out) }
	}
	return c.send(req, decode)
}

// maxResponse bounds a response body: a 64 MiB output in base64 plus room.
const maxResponse = 96 << 20

func (c *Client) send(req *http.Request, decode func([]byte) error) error {
	ctx, cancel := withTimeout(req.Context(), DefaultTimeout)
	defer cancel()
	resp, err := c.hc.Do(req.WithContext(ctx))
	if err != nil {
		return &unreachableError{url: c.base.String(), err: err}
	}
	defer resp.Body.Close()
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
func (c *Client) Close() { c.hc.CloseIdleConnections() }
