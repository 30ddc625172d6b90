package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "vouch:test-fingerprint"
	testFunction = "k3v7abcdefghijklmnop"
	testChecksum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testJTI      = "00112233445566778899aabbccddeeff"
)

var (
	t0      = time.Unix(1_750_000_000, 0)
	testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	otherKy = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
)

// memRevocations is a Revocations store for tests.
type memRevocations struct {
	mu      sync.Mutex
	revoked map[string]bool
	err     error
}

func (m *memRevocations) Revoked(jti string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.revoked[jti], m.err
}

func (m *memRevocations) revoke(jti string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.revoked == nil {
		m.revoked = map[string]bool{}
	}
	m.revoked[jti] = true
}

// fixture returns an issuer and a verifier whose clocks read *now.
func fixture(t testing.TB) (*Issuer, *Verifier, *memRevocations, *time.Time) {
	t.Helper()
	now := t0
	iss, err := NewIssuer(testKey, testIssuer)
	if err != nil {
		t.Fatal(err)
	}
	rev := &memRevocations{}
	ver, err := NewVerifier(testKey.Public().(ed25519.PublicKey), testIssuer, rev)
	if err != nil {
		t.Fatal(err)
	}
	iss.now = func() time.Time { return now }
	ver.now = func() time.Time { return now }
	return iss, ver, rev, &now
}

var b64 = base64.RawURLEncoding

func encodeJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64.EncodeToString(b)
}

// handToken builds a compact JWS by hand and signs it with key (no signature
// when key is nil).
func handToken(t testing.TB, key ed25519.PrivateKey, header, claims any) string {
	t.Helper()
	input := encodeJSON(t, header) + "." + encodeJSON(t, claims)
	var sig []byte
	if key != nil {
		sig = ed25519.Sign(key, []byte(input))
	}
	return input + "." + b64.EncodeToString(sig)
}

var goodHeader = map[string]any{"alg": "EdDSA", "typ": "JWT"}

func goodClaims() map[string]any {
	return map[string]any{
		"iss":               testIssuer,
		"sub":               testFunction,
		"aud":               Audience,
		"iat":               t0.Unix(),
		"nbf":               t0.Unix(),
		"exp":               t0.Add(time.Hour).Unix(),
		"jti":               testJTI,
		"function_checksum": testChecksum,
	}
}

func with(kv ...any) map[string]any {
	c := goodClaims()
	for i := 0; i < len(kv); i += 2 {
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

func without(names ...string) map[string]any {
	c := goodClaims()
	for _, n := range names {
		delete(c, n)
	}
	return c
}

func TestMintVerifyRoundTrip(t *testing.T) {
	iss, ver, _, _ := fixture(t)
	tok, minted, err := iss.Mint(testFunction, testChecksum, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := &Claims{
		FunctionID:       testFunction,
		FunctionChecksum: testChecksum,
		ID:               minted.ID,
		Issuer:           testIssuer,
		IssuedAt:         t0,
		NotBefore:        t0,
		ExpiresAt:        t0.Add(time.Hour),
	}
	if *minted != *want {
		t.Errorf("Mint claims = %+v, want %+v", minted, want)
	}
	if !isLowerHex(minted.ID, 32) {
		t.Errorf("jti %q is not 32 lowercase hex characters", minted.ID)
	}
	got, err := ver.Verify(tok, testFunction)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if *got != *want {
		t.Errorf("Verify claims = %+v, want %+v", got, want)
	}
	parsed, err := Parse(tok)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if *parsed != *want {
		t.Errorf("Parse claims = %+v, want %+v", parsed, want)
	}

	// The wire form is exactly what the package documentation says.
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	header, _ := b64.DecodeString(parts[0])
	if string(header) != `{"alg":"EdDSA","typ":"JWT"}` {
		t.Errorf("header = %s", header)
	}
	payload, _ := b64.DecodeString(parts[1])
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"aud", "exp", "function_checksum", "iat", "iss", "jti", "nbf", "sub"}
	if keys := slices.Sorted(maps.Keys(m)); strings.Join(keys, ",") != strings.Join(wantKeys, ",") {
		t.Errorf("claims keys = %v, want %v", keys, wantKeys)
	}
	if m["aud"] != Audience || m["exp"] != json.Number("1750003600") || m["iat"] != json.Number("1750000000") {
		t.Errorf("claims = %s", payload)
	}
}

func TestMintUniqueIDs(t *testing.T) {
	iss, _, _, _ := fixture(t)
	seen := map[string]bool{}
	for range 100 {
		tok, c, err := iss.Mint(testFunction, testChecksum, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if seen[c.ID] || seen[tok] {
			t.Fatalf("duplicate jti %s", c.ID)
		}
		seen[c.ID], seen[tok] = true, true
	}
}

func TestVerifyLeeway(t *testing.T) {
	iss, ver, _, now := fixture(t)
	tok, _, err := iss.Mint(testFunction, testChecksum, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// A verifier whose clock is slightly behind still accepts the token.
	*now = t0.Add(-Leeway)
	if _, err := ver.Verify(tok, testFunction); err != nil {
		t.Errorf("clock %v behind: %v", Leeway, err)
	}
	*now = t0.Add(-Leeway - time.Second)
	if _, err := ver.Verify(tok, testFunction); !errors.Is(err, ErrNotYetValid) {
		t.Errorf("clock %v behind: err = %v, want ErrNotYetValid", Leeway+time.Second, err)
	}
	// Valid until the last second before exp, not at exp.
	*now = t0.Add(time.Minute - time.Nanosecond)
	if _, err := ver.Verify(tok, testFunction); err != nil {
		t.Errorf("just before exp: %v", err)
	}
	*now = t0.Add(time.Minute)
	if _, err := ver.Verify(tok, testFunction); !errors.Is(err, ErrExpired) {
		t.Errorf("at exp: err = %v, want ErrExpired", err)
	}
}

func TestVerifyRevoked(t *testing.T) {
	iss, ver, rev, _ := fixture(t)
	tok, c, err := iss.Mint(testFunction, testChecksum, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ver.Verify(tok, testFunction); err != nil {
		t.Fatal(err)
	}
	// Revocation by token: the administrator presents the token, Parse
	// finds its jti.
	parsed, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	rev.revoke(parsed.ID)
	_, err = ver.Verify(tok, testFunction)
	if !errors.Is(err, ErrRevoked) || HTTPStatus(err) != http.StatusForbidden {
		t.Fatalf("err = %v, want ErrRevoked (403)", err)
	}
	if !strings.Contains(err.Error(), c.ID) {
		t.Errorf("error %q does not name the jti", err)
	}
}

func TestVerifyRevocationStoreFailure(t *testing.T) {
	iss, ver, rev, _ := fixture(t)
	tok, _, err := iss.Mint(testFunction, testChecksum, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	storeErr := errors.New("database is down")
	rev.err = storeErr
	_, err = ver.Verify(tok, testFunction)
	if !errors.Is(err, storeErr) {
		t.Fatalf("err = %v, want the store's error", err)
	}
	if HTTPStatus(err) != http.StatusInternalServerError {
		t.Errorf("HTTPStatus = %d, want 500", HTTPStatus(err))
	}
}

func TestVerifyWrongFunctionMessage(t *testing.T) {
	iss, ver, _, _ := fixture(t)
	tok, _, err := iss.Mint("fn-a", testChecksum, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ver.Verify(tok, "fn-b")
	if !errors.Is(err, ErrWrongFunction) || HTTPStatus(err) != http.StatusForbidden {
		t.Fatalf("err = %v, want ErrWrongFunction (403)", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `"fn-a"`) || !strings.Contains(msg, `"fn-b"`) {
		t.Errorf("message %q does not name both functions", msg)
	}
}

// TestVerifyBadTokens is the table of tokens Verify must refuse.
func TestVerifyBadTokens(t *testing.T) {
	pub := testKey.Public().(ed25519.PublicKey)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwtSign := func(m jwt.SigningMethod, key any) func(t testing.TB) string {
		return func(t testing.TB) string {
			tok, err := jwt.NewWithClaims(m, jwt.MapClaims(goodClaims())).SignedString(key)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	signed := func(header, claims map[string]any) func(t testing.TB) string {
		return func(t testing.TB) string { return handToken(t, testKey, header, claims) }
	}
	literal := func(s string) func(t testing.TB) string {
		return func(testing.TB) string { return s }
	}
	valid := handToken(t, testKey, goodHeader, goodClaims())
	vparts := strings.Split(valid, ".")

	tests := []struct {
		name     string
		tok      func(t testing.TB) string
		function string
		want     error
		msg      string // substring of the error message
	}{
		{"empty", literal(""), testFunction, ErrMissing, "no function token"},
		{"garbage", literal("not a token"), testFunction, ErrMalformed, "malformed"},
		{"two segments", literal("a.b"), testFunction, ErrMalformed, "segments"},
		{"four segments", literal(valid + ".x"), testFunction, ErrMalformed, "segments"},
		{"overlong", literal(strings.Repeat("a", MaxTokenLen+1)), testFunction, ErrMalformed, "4097 bytes"},
		{"overlong valid prefix", literal(valid + strings.Repeat("A", MaxTokenLen)), testFunction, ErrMalformed, "more than the limit"},
		{"header not base64", literal("!!!." + vparts[1] + "." + vparts[2]), testFunction, ErrMalformed, "base64"},
		{"header not JSON", literal(b64.EncodeToString([]byte("{")) + "." + vparts[1] + "." + vparts[2]), testFunction, ErrMalformed, "JSON"},
		{"claims not JSON", literal(vparts[0] + "." + b64.EncodeToString([]byte("[1]")) + "." + vparts[2]), testFunction, ErrMalformed, "JSON"},
		{"padded base64", literal(vparts[0] + "." + vparts[1] + "." + vparts[2] + "=="), testFunction, ErrMalformed, "base64"},
		{"alg none", func(t testing.TB) string {
			return handToken(t, nil, map[string]any{"alg": "none", "typ": "JWT"}, goodClaims())
		}, testFunction, ErrBadSignature, `"none"`},
		{"alg none with signature", func(t testing.TB) string {
			return handToken(t, testKey, map[string]any{"alg": "none"}, goodClaims())
		}, testFunction, ErrBadSignature, `"none"`},
		{"alg NONE", func(t testing.TB) string { return handToken(t, nil, map[string]any{"alg": "NONE"}, goodClaims()) }, testFunction, ErrBadSignature, `"NONE"`},
		{"HS256 keyed with the public key", jwtSign(jwt.SigningMethodHS256, []byte(pub)), testFunction, ErrBadSignature, `"HS256"`},
		{"HS256 keyed with the private key", jwtSign(jwt.SigningMethodHS256, []byte(testKey)), testFunction, ErrBadSignature, `"HS256"`},
		{"RS256", jwtSign(jwt.SigningMethodRS256, rsaKey), testFunction, ErrBadSignature, `"RS256"`},
		{"ES256", jwtSign(jwt.SigningMethodES256, ecKey), testFunction, ErrBadSignature, `"ES256"`},
		{"unknown alg", signed(map[string]any{"alg": "Ed25519"}, goodClaims()), testFunction, ErrBadSignature, `"Ed25519"`},
		{"no alg", signed(map[string]any{"typ": "JWT"}, goodClaims()), testFunction, ErrBadSignature, "no algorithm"},
		{"alg not a string", signed(map[string]any{"alg": 1}, goodClaims()), testFunction, ErrBadSignature, "no algorithm"},
		{"signed by another key", func(t testing.TB) string { return handToken(t, otherKy, goodHeader, goodClaims()) }, testFunction, ErrBadSignature, "token key"},
		{"no signature", literal(vparts[0] + "." + vparts[1] + "."), testFunction, ErrBadSignature, "token key"},
		{"flipped signature bit", literal(vparts[0] + "." + vparts[1] + "." + flipB64(vparts[2])), testFunction, ErrBadSignature, "token key"},
		{"claims swapped under a valid signature", literal(vparts[0] + "." + encodeJSON(t, with("sub", "other")) + "." + vparts[2]), testFunction, ErrBadSignature, "token key"},
		{"crit header", signed(map[string]any{"alg": "EdDSA", "crit": []string{"exp"}}, goodClaims()), testFunction, ErrMalformed, "crit"},
		{"expired", signed(goodHeader, with("exp", t0.Unix())), testFunction, ErrExpired, "expired at 2025-06-15T15:06:40Z"},
		{"long expired", signed(goodHeader, with("iat", 1, "nbf", 1, "exp", 2)), testFunction, ErrExpired, "expired"},
		{"not yet valid", signed(goodHeader, with("nbf", t0.Add(time.Minute).Unix())), testFunction, ErrNotYetValid, "becomes valid at"},
		{"issued in the future", signed(goodHeader, with("iat", t0.Add(time.Minute).Unix())), testFunction, ErrNotYetValid, "issued in the future"},
		{"another function", signed(goodHeader, goodClaims()), "other-fn", ErrWrongFunction, `for function "k3v7abcdefghijklmnop", not "other-fn"`},
		{"empty function asked", signed(goodHeader, goodClaims()), "", ErrWrongFunction, "not \"\""},
		{"wrong issuer", signed(goodHeader, with("iss", "vouch:someone-else")), testFunction, ErrWrongIssuer, `"vouch:someone-else"`},
		{"wrong audience", signed(goodHeader, with("aud", "vouch-admin")), testFunction, ErrWrongAudience, `"vouch-admin"`},
		{"audience array", signed(goodHeader, with("aud", []string{Audience})), testFunction, ErrMalformed, "JSON"},
		{"missing exp", signed(goodHeader, without("exp")), testFunction, ErrMalformed, `"exp" is missing`},
		{"null exp", signed(goodHeader, with("exp", nil)), testFunction, ErrMalformed, `"exp" is missing`},
		{"missing jti", signed(goodHeader, without("jti")), testFunction, ErrMalformed, `"jti" is missing`},
		{"missing sub", signed(goodHeader, without("sub")), testFunction, ErrMalformed, `"sub" is missing`},
		{"missing iss", signed(goodHeader, without("iss")), testFunction, ErrMalformed, `"iss" is missing`},
		{"missing aud", signed(goodHeader, without("aud")), testFunction, ErrMalformed, `"aud" is missing`},
		{"missing iat", signed(goodHeader, without("iat")), testFunction, ErrMalformed, `"iat" is missing`},
		{"missing nbf", signed(goodHeader, without("nbf")), testFunction, ErrMalformed, `"nbf" is missing`},
		{"missing function_checksum", signed(goodHeader, without("function_checksum")), testFunction, ErrMalformed, `"function_checksum" is missing`},
		{"bad function_checksum", signed(goodHeader, with("function_checksum", strings.ToUpper(testChecksum))), testFunction, ErrMalformed, "64 lowercase hex"},
		{"bad jti", signed(goodHeader, with("jti", "1")), testFunction, ErrMalformed, "jti"},
		{"bad sub", signed(goodHeader, with("sub", "a b")), "a b", ErrMalformed, "sub"},
		{"float exp", signed(goodHeader, with("exp", 1.75e9+3600.5)), testFunction, ErrMalformed, "JSON"},
		{"string exp", signed(goodHeader, with("exp", "1750003600")), testFunction, ErrMalformed, "JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ver, _, _ := fixture(t)
			tok := tt.tok(t)
			c, err := ver.Verify(tok, tt.function)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if c != nil {
				t.Errorf("claims = %+v, want nil", c)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q does not contain %q", err, tt.msg)
			}
			if s := HTTPStatus(err); s != http.StatusUnauthorized && s != http.StatusForbidden {
				t.Errorf("HTTPStatus = %d, want 401 or 403", s)
			}
			// A token is a bearer secret: no error repeats its signature.
			if parts := strings.Split(tok, "."); len(parts) == 3 && len(parts[2]) > 8 && strings.Contains(err.Error(), parts[2]) {
				t.Errorf("error message contains the token's signature: %q", err)
			}
		})
	}
}

func flipB64(s string) string {
	b, err := b64.DecodeString(s)
	if err != nil {
		panic(err)
	}
	b[len(b)/2] ^= 0x01
	return b64.EncodeToString(b)
}

func TestMintBadInput(t *testing.T) {
	iss, _, _, _ := fixture(t)
	tests := []struct {
		name, function, checksum string
		ttl                      time.Duration
		msg                      string
	}{
		{"empty function", "", testChecksum, time.Hour, "function ID is empty"},
		{"function with space", "a b", testChecksum, time.Hour, `function ID "a b" contains ' '`},
		{"function with slash", "a/b", testChecksum, time.Hour, `contains '/'`},
		{"function too long", strings.Repeat("a", MaxFunctionIDLen+1), testChecksum, time.Hour, "129 bytes"},
		{"empty checksum", testFunction, "", time.Hour, "checksum"},
		{"uppercase checksum", testFunction, strings.ToUpper(testChecksum), time.Hour, "64 lowercase hex"},
		{"short checksum", testFunction, testChecksum[:63], time.Hour, "64 lowercase hex"},
		{"non-hex checksum", testFunction, strings.Repeat("g", 64), time.Hour, "64 lowercase hex"},
		{"zero ttl", testFunction, testChecksum, 0, "ttl 0s"},
		{"negative ttl", testFunction, testChecksum, -time.Hour, "ttl -1h0m0s"},
		{"sub-second ttl", testFunction, testChecksum, 500 * time.Millisecond, "ttl 500ms"},
		{"ttl over a year", testFunction, testChecksum, MaxTTL + time.Second, "outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, c, err := iss.Mint(tt.function, tt.checksum, tt.ttl)
			if err == nil {
				t.Fatalf("Mint succeeded: %v", c)
			}
			if tok != "" || c != nil {
				t.Errorf("Mint returned a token with an error")
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q does not contain %q", err, tt.msg)
			}
		})
	}
	if _, _, err := iss.Mint(testFunction, testChecksum, MaxTTL); err != nil {
		t.Errorf("Mint with MaxTTL: %v", err)
	}
}

func TestConstructorsBadInput(t *testing.T) {
	pub := testKey.Public().(ed25519.PublicKey)
	tests := []struct {
		name string
		err  func() error
		msg  string
	}{
		{"issuer nil key", func() error { _, err := NewIssuer(nil, testIssuer); return err }, "private key is 0 bytes"},
		{"issuer short key", func() error { _, err := NewIssuer(testKey[:32], testIssuer); return err }, "private key is 32 bytes"},
		{"issuer empty", func() error { _, err := NewIssuer(testKey, ""); return err }, "issuer is empty"},
		{"issuer with space", func() error { _, err := NewIssuer(testKey, "vouch: x"); return err }, `contains ' '`},
		{"issuer too long", func() error { _, err := NewIssuer(testKey, strings.Repeat("x", MaxIssuerLen+1)); return err }, "257 bytes"},
		{"verifier short key", func() error { _, err := NewVerifier(pub[:31], testIssuer, NoRevocations); return err }, "public key is 31 bytes"},
		{"verifier empty issuer", func() error { _, err := NewVerifier(pub, "", NoRevocations); return err }, "issuer is empty"},
		{"verifier nil revocations", func() error { _, err := NewVerifier(pub, testIssuer, nil); return err }, "NoRevocations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want it to contain %q", err, tt.msg)
			}
		})
	}
}

func TestIssuerDoesNotPrintKey(t *testing.T) {
	iss, _, _, _ := fixture(t)
	seed := testKey.Seed()
	type holder struct{ I *Issuer }
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		for _, v := range []any{iss, holder{iss}} {
			out := fmt.Sprintf(format, v)
			if strings.Contains(out, hex.EncodeToString(seed)) || strings.Contains(out, string(seed)) ||
				strings.Contains(out, fmt.Sprint([]byte(testKey))[1:20]) {
				t.Errorf("fmt %s shows the key: %s", format, out)
			}
		}
	}
}

func TestVerifierCopiesKey(t *testing.T) {
	pub := bytes.Clone(testKey.Public().(ed25519.PublicKey))
	ver, err := NewVerifier(pub, testIssuer, NoRevocations)
	if err != nil {
		t.Fatal(err)
	}
	ver.now = func() time.Time { return t0 }
	pub[0] ^= 0xff // the caller's slice changes; the verifier must not
	tok := handToken(t, testKey, goodHeader, goodClaims())
	if _, err := ver.Verify(tok, testFunction); err != nil {
		t.Fatal(err)
	}
}

func TestParseBadInput(t *testing.T) {
	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"empty", "", ErrMissing},
		{"garbage", "garbage", ErrMalformed},
		{"overlong", strings.Repeat("a.", MaxTokenLen), ErrMalformed},
		{"missing exp", handToken(t, testKey, goodHeader, without("exp")), ErrMalformed},
		{"missing jti", handToken(t, testKey, goodHeader, without("jti")), ErrMalformed},
		{"unknown alg", handToken(t, testKey, map[string]any{"alg": "XX"}, goodClaims()), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.tok)
			if !errors.Is(err, tt.want) || c != nil {
				t.Errorf("Parse = %v, %v; want nil, %v", c, err, tt.want)
			}
		})
	}
}

func TestParseVerifiesNothing(t *testing.T) {
	// Parse accepts a forged, unsigned, expired token: that is the point of
	// the loud warning in its documentation.
	forged := handToken(t, nil, map[string]any{"alg": "none"}, with("exp", 1, "iss", "mallory"))
	c, err := Parse(forged)
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "mallory" {
		t.Errorf("Issuer = %q", c.Issuer)
	}
}

func TestHTTPStatus(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 200},
		{ErrMissing, 401},
		{ErrMalformed, 401},
		{ErrBadSignature, 401},
		{ErrExpired, 401},
		{ErrNotYetValid, 401},
		{ErrWrongIssuer, 401},
		{ErrWrongAudience, 401},
		{ErrWrongFunction, 403},
		{ErrRevoked, 403},
		{errors.New("other"), 500},
	}
	for _, tt := range tests {
		if got := HTTPStatus(tt.err); got != tt.want {
			t.Errorf("HTTPStatus(%v) = %d, want %d", tt.err, got, tt.want)
		}
		if tt.err != nil {
			wrapped := errors.Join(errors.New("context"), tt.err)
			if got := HTTPStatus(wrapped); got != tt.want {
				t.Errorf("HTTPStatus(wrapped %v) = %d, want %d", tt.err, got, tt.want)
			}
		}
	}
}

func TestVerifyConcurrent(t *testing.T) {
	iss, ver, rev, _ := fixture(t)
	tok, _, err := iss.Mint(testFunction, testChecksum, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := ver.Verify(tok, testFunction); err != nil {
					t.Error(err)
					return
				}
				if _, _, err := iss.Mint(testFunction, testChecksum, time.Hour); err != nil {
					t.Error(err)
					return
				}
				_, _ = rev.Revoked("x")
			}
		})
	}
	wg.Wait()
}

func BenchmarkVerify(b *testing.B) {
	iss, ver, _, _ := fixture(b)
	tok, _, err := iss.Mint(testFunction, testChecksum, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := ver.Verify(tok, testFunction); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMint(b *testing.B) {
	iss, _, _, _ := fixture(b)
	for b.Loop() {
		if _, _, err := iss.Mint(testFunction, testChecksum, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
