package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// Audience is the aud claim of every function token.
	Audience = "vouch-run"
	// Algorithm is the only JWS algorithm a function token may use.
	Algorithm = "EdDSA"

	// MaxTokenLen is the length, in bytes, above which a token is refused
	// without being parsed.
	MaxTokenLen = 4096
	// MinTTL and MaxTTL bound the lifetime [Issuer.Mint] accepts.
	MinTTL = time.Second
	MaxTTL = 365 * 24 * time.Hour
	// Leeway is how far in the future nbf and iat may be, to allow for
	// clock skew. exp gets no leeway.
	Leeway = 30 * time.Second

	// MaxFunctionIDLen is the longest function ID accepted.
	MaxFunctionIDLen = 128
	// MaxIssuerLen is the longest issuer string accepted.
	MaxIssuerLen = 256
)

// Sentinel errors. Every error [Verifier.Verify] and [Parse] return for a bad
// token wraps exactly one of them; test with [errors.Is] and map to an HTTP
// status with [HTTPStatus].
var (
	// ErrMissing: no token was presented.
	ErrMissing = errors.New("token: no function token presented")
	// ErrMalformed: the token is not a well-formed vouch function token
	// (too long, not a JWT, bad encoding, or a claim missing or malformed).
	ErrMalformed = errors.New("token: malformed function token")
	// ErrBadSignature: the token is not signed with EdDSA by the runtime's
	// token key (wrong key, "none", HS256, any other algorithm).
	ErrBadSignature = errors.New("token: function token signature is not valid")
	// ErrExpired: the token's exp has passed.
	ErrExpired = errors.New("token: function token has expired")
	// ErrNotYetValid: the token's nbf or iat is in the future.
	ErrNotYetValid = errors.New("token: function token is not valid yet")
	// ErrWrongIssuer: the token was issued by another runtime.
	ErrWrongIssuer = errors.New("token: function token was issued by another runtime")
	// ErrWrongAudience: the token is not meant for running functions.
	ErrWrongAudience = errors.New("token: function token has the wrong audience")
	// ErrWrongFunction: the token is valid, but for another function.
	ErrWrongFunction = errors.New("token: function token is for another function")
	// ErrRevoked: the token has been revoked.
	ErrRevoked = errors.New("token: function token has been revoked")
)

// HTTPStatus returns the HTTP status code a server should answer with when
// [Verifier.Verify] returns err: 200 for nil, 401 when the caller did not
// authenticate, 403 when it authenticated but may not run this function, and
// 500 for anything else (such as a failing [Revocations] store).
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrWrongFunction), errors.Is(err, ErrRevoked):
		return http.StatusForbidden
	case errors.Is(err, ErrMissing), errors.Is(err, ErrMalformed),
		errors.Is(err, ErrBadSignature), errors.Is(err, ErrExpired),
		errors.Is(err, ErrNotYetValid), errors.Is(err, ErrWrongIssuer),
		errors.Is(err, ErrWrongAudience):
		return http.StatusUnauthorized
	default:
		return http.StatusInternalServerError
	}
}

// Claims are the claims of a function token.
type Claims struct {
	// FunctionID is the function the token authorises running (sub).
	FunctionID string
	// FunctionChecksum is the checksum (64 lowercase hex characters) of the
	// function the token was minted for (function_checksum).
	FunctionChecksum string
	// ID is the token's unique identifier (jti), the handle for revocation.
	ID string
	// Issuer identifies the runtime that minted the token (iss).
	Issuer string
	// IssuedAt, NotBefore and ExpiresAt are iat, nbf and exp, with whole
	// seconds. The token is valid from NotBefore until just before ExpiresAt.
	IssuedAt, NotBefore, ExpiresAt time.Time
}

// Issuer mints function tokens. It is safe for concurrent use. Printing it
// shows only its issuer string.
type Issuer struct {
	key    ed25519.PrivateKey
	issuer string
	now    func() time.Time
}

// NewIssuer returns an Issuer that signs with key and writes issuer into the
// iss claim. key is the runtime's token key; the Issuer keeps a reference to
// it and never reveals it.
func NewIssuer(key ed25519.PrivateKey, issuer string) (*Issuer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("token: Ed25519 private key is %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	if err := checkIssuer(issuer); err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	return &Issuer{key: key, issuer: issuer, now: time.Now}, nil
}

// String describes the Issuer without its key, so that printing it by
// mistake reveals nothing secret.
func (i *Issuer) String() string { return "token.Issuer(" + i.issuer + ")" }

// GoString is like String, for %#v.
func (i *Issuer) GoString() string { return i.String() }

// Mint returns a new token that authorises running the function functionID,
// whose checksum is functionChecksum, for ttl from now, together with its
// claims. ttl must be between [MinTTL] and [MaxTTL]; it is rounded down to
// whole seconds.
func (i *Issuer) Mint(functionID, functionChecksum string, ttl time.Duration) (string, *Claims, error) {
	if err := checkFunctionID(functionID); err != nil {
		return "", nil, fmt.Errorf("token: %w", err)
	}
	if err := checkChecksum(functionChecksum); err != nil {
		return "", nil, fmt.Errorf("token: %w", err)
	}
	if ttl < MinTTL || ttl > MaxTTL {
		return "", nil, fmt.Errorf("token: ttl %v is outside %v..%v", ttl, MinTTL, MaxTTL)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", nil, fmt.Errorf("token: cannot generate token ID: %w", err)
	}
	now := i.now().Unix()
	exp := now + int64(ttl/time.Second)
	wc := &wireClaims{
		Issuer:           i.issuer,
		Subject:          functionID,
		Audience:         Audience,
		IssuedAt:         &now,
		NotBefore:        &now,
		ExpiresAt:        &exp,
		ID:               hex.EncodeToString(id[:]),
		FunctionChecksum: functionChecksum,
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, wc).SignedString(i.key)
	if err != nil {
		return "", nil, fmt.Errorf("token: cannot sign token: %w", err)
	}
	return tok, wc.claims(), nil
}

// Revocations tells whether a token ID (jti) has been revoked. Revoked must
// be safe for concurrent use. An error makes Verify fail (closed).
type Revocations interface {
	Revoked(jti string) (bool, error)
}

// NoRevocations is a [Revocations] store in which nothing is ever revoked.
// Pass it to [NewVerifier] to make the absence of revocation explicit.
var NoRevocations Revocations = noRevocations{}

type noRevocations struct{}

func (noRevocations) Revoked(string) (bool, error) { return false, nil }

// Verifier checks function tokens. It is safe for concurrent use if its
// [Revocations] store is.
type Verifier struct {
	pub    ed25519.PublicKey
	issuer string
	rev    Revocations
	now    func() time.Time
}

// NewVerifier returns a Verifier that accepts tokens signed by pub, issued by
// issuer, and not revoked according to rev. rev must not be nil; pass
// [NoRevocations] to opt out of revocation.
func NewVerifier(pub ed25519.PublicKey, issuer string, rev Revocations) (*Verifier, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("token: Ed25519 public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if err := checkIssuer(issuer); err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	if rev == nil {
		return nil, errors.New("token: revocation store is nil; pass token.NoRevocations to verify without one")
	}
	return &Verifier{pub: append(ed25519.PublicKey(nil), pub...), issuer: issuer, rev: rev, now: time.Now}, nil
}

// Verify checks that tok is a valid, unrevoked token that authorises running
// functionID, and returns its claims. See the package documentation for the
// checks and the errors.
func (v *Verifier) Verify(tok, functionID string) (*Claims, error) {
	if err := checkLength(tok); err != nil {
		return nil, err
	}
	var wc wireClaims
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithStrictDecoding(),
		jwt.WithoutClaimsValidation(), // done below, with precise errors
	)
	t, err := parser.ParseWithClaims(tok, &wc, func(t *jwt.Token) (any, error) {
		// Belt and braces: WithValidMethods already refused other algorithms.
		if t.Method != jwt.SigningMethodEdDSA {
			return nil, fmt.Errorf("algorithm %v is not %s", t.Method.Alg(), Algorithm)
		}
		return v.pub, nil
	})
	if err != nil {
		return nil, classifyParseError(t, err)
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, fmt.Errorf("%w: header has a crit parameter, which vouch does not support", ErrMalformed)
	}
	if err := wc.check(); err != nil {
		return nil, err
	}
	if wc.Issuer != v.issuer {
		return nil, fmt.Errorf("%w: token was issued by %q, this runtime is %q", ErrWrongIssuer, clip(wc.Issuer), v.issuer)
	}
	if wc.Audience != Audience {
		return nil, fmt.Errorf("%w: audience is %q, want %q", ErrWrongAudience, clip(wc.Audience), Audience)
	}
	if wc.Subject != functionID {
		return nil, fmt.Errorf("%w: token is for function %q, not %q", ErrWrongFunction, wc.Subject, clip(functionID))
	}
	c := wc.claims()
	now := v.now()
	if !now.Before(c.ExpiresAt) {
		return nil, fmt.Errorf("%w: it expired at %s (%s ago)", ErrExpired,
			c.ExpiresAt.UTC().Format(time.RFC3339), now.Sub(c.ExpiresAt).Round(time.Second))
	}
	if c.NotBefore.After(now.Add(Leeway)) {
		return nil, fmt.Errorf("%w: it becomes valid at %s (in %s)", ErrNotYetValid,
			c.NotBefore.UTC().Format(time.RFC3339), c.NotBefore.Sub(now).Round(time.Second))
	}
	if c.IssuedAt.After(now.Add(Leeway)) {
		return nil, fmt.Errorf("%w: it was issued in the future, at %s", ErrNotYetValid,
			c.IssuedAt.UTC().Format(time.RFC3339))
	}
	revoked, err := v.rev.Revoked(c.ID)
	if err != nil {
		return nil, fmt.Errorf("token: cannot check whether token %s is revoked: %w", c.ID, err)
	}
	if revoked {
		return nil, fmt.Errorf("%w: token %s for function %q", ErrRevoked, c.ID, c.FunctionID)
	}
	return c, nil
}

// Parse decodes tok WITHOUT VERIFYING ANYTHING: not the signature, not the
// issuer, not the expiry, not revocation. Anyone can forge a token that
// Parse accepts. Use it only to display a token (vouch token inspect) or to
// find the jti of a token an authenticated administrator wants to revoke;
// never to decide whether to run a function. Use [Verifier.Verify] for that.
//
// Parse fails with [ErrMissing] or [ErrMalformed] when tok is not a
// well-formed vouch function token.
func Parse(tok string) (*Claims, error) {
	if err := checkLength(tok); err != nil {
		return nil, err
	}
	var wc wireClaims
	parser := jwt.NewParser(jwt.WithStrictDecoding())
	if _, _, err := parser.ParseUnverified(tok, &wc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err := wc.check(); err != nil {
		return nil, err
	}
	return wc.claims(), nil
}

func checkLength(tok string) error {
	if tok == "" {
		return ErrMissing
	}
	if len(tok) > MaxTokenLen {
		return fmt.Errorf("%w: token is %d bytes, more than the limit of %d", ErrMalformed, len(tok), MaxTokenLen)
	}
	return nil
}

// classifyParseError maps an error of jwt.Parser.ParseWithClaims to a
// sentinel. t may be nil.
func classifyParseError(t *jwt.Token, err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	case t != nil && t.Header != nil && t.Header["alg"] != Algorithm:
		alg, ok := t.Header["alg"].(string)
		if !ok {
			return fmt.Errorf("%w: header names no algorithm, want %s", ErrBadSignature, Algorithm)
		}
		return fmt.Errorf("%w: algorithm %q is not accepted, want %s", ErrBadSignature, clip(alg), Algorithm)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return fmt.Errorf("%w: it was not signed by this runtime's token key: %w", ErrBadSignature, err)
	default:
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
}

// wireClaims is the JSON form of the claims. Timestamps are integers, aud a
// single string; pointers tell a missing claim from a zero one.
type wireClaims struct {
	Issuer           string `json:"iss"`
	Subject          string `json:"sub"`
	Audience         string `json:"aud"`
	IssuedAt         *int64 `json:"iat"`
	NotBefore        *int64 `json:"nbf"`
	ExpiresAt        *int64 `json:"exp"`
	ID               string `json:"jti"`
	FunctionChecksum string `json:"function_checksum"`
}

// check verifies that every claim is present and well formed. It compares
// nothing with what a verifier expects.
func (w *wireClaims) check() error {
	missing := func(name string) error {
		return fmt.Errorf("%w: claim %q is missing", ErrMalformed, name)
	}
	switch {
	case w.Issuer == "":
		return missing("iss")
	case w.Subject == "":
		return missing("sub")
	case w.Audience == "":
		return missing("aud")
	case w.IssuedAt == nil:
		return missing("iat")
	case w.NotBefore == nil:
		return missing("nbf")
	case w.ExpiresAt == nil:
		return missing("exp")
	case w.ID == "":
		return missing("jti")
	case w.FunctionChecksum == "":
		return missing("function_checksum")
	}
	if err := checkFunctionID(w.Subject); err != nil {
		return fmt.Errorf("%w: claim sub: %w", ErrMalformed, err)
	}
	if !isLowerHex(w.ID, 32) {
		return fmt.Errorf("%w: jti %q is not 32 lowercase hex characters", ErrMalformed, clip(w.ID))
	}
	if err := checkChecksum(w.FunctionChecksum); err != nil {
		return fmt.Errorf("%w: claim function_checksum: %w", ErrMalformed, err)
	}
	return nil
}

func (w *wireClaims) claims() *Claims {
	return &Claims{
		FunctionID:       w.Subject,
		FunctionChecksum: w.FunctionChecksum,
		ID:               w.ID,
		Issuer:           w.Issuer,
		IssuedAt:         time.Unix(*w.IssuedAt, 0),
		NotBefore:        time.Unix(*w.NotBefore, 0),
		ExpiresAt:        time.Unix(*w.ExpiresAt, 0),
	}
}

// The jwt.Claims interface. Only signing uses it: Verify validates the
// claims itself.

func numericDate(p *int64) (*jwt.NumericDate, error) {
	if p == nil {
		return nil, nil
	}
	return &jwt.NumericDate{Time: time.Unix(*p, 0)}, nil
}

func (w *wireClaims) GetExpirationTime() (*jwt.NumericDate, error) { return numericDate(w.ExpiresAt) }
func (w *wireClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return numericDate(w.IssuedAt) }
func (w *wireClaims) GetNotBefore() (*jwt.NumericDate, error)      { return numericDate(w.NotBefore) }
func (w *wireClaims) GetIssuer() (string, error)                   { return w.Issuer, nil }
func (w *wireClaims) GetSubject() (string, error)                  { return w.Subject, nil }
func (w *wireClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{w.Audience}, nil
}

func checkIssuer(issuer string) error {
	if issuer == "" {
		return errors.New("issuer is empty")
	}
	if len(issuer) > MaxIssuerLen {
		return fmt.Errorf("issuer is %d bytes, more than the limit of %d", len(issuer), MaxIssuerLen)
	}
	for i := 0; i < len(issuer); i++ {
		if c := issuer[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("issuer %q contains %q; only printable ASCII without spaces is allowed", issuer, c)
		}
	}
	return nil
}

// checkFunctionID accepts 1 to MaxFunctionIDLen ASCII letters, digits, '.',
// '_' and '-'.
func checkFunctionID(id string) error {
	if id == "" {
		return errors.New("function ID is empty")
	}
	if len(id) > MaxFunctionIDLen {
		return fmt.Errorf("function ID is %d bytes, more than the limit of %d", len(id), MaxFunctionIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("function ID %q contains %q; only letters, digits, '.', '_' and '-' are allowed", id, c)
		}
	}
	return nil
}

func checkChecksum(sum string) error {
	if !isLowerHex(sum, 64) {
		return fmt.Errorf("function checksum %q is not 64 lowercase hex characters (a SHA-256)", clip(sum))
	}
	return nil
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// clip shortens an untrusted string before it goes into an error message.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
