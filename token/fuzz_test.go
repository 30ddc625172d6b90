package token

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzVerify checks that Verify never panics, that every refusal wraps one
// of the sentinels, and that whatever it accepts Parse decodes identically.
func FuzzVerify(f *testing.F) {
	iss, ver, _, _ := fixture(f)
	valid, _, err := iss.Mint(testFunction, testChecksum, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid, testFunction)
	f.Add(valid, "other")
	f.Add(handToken(f, testKey, goodHeader, without("exp")), testFunction)
	f.Add(handToken(f, nil, map[string]any{"alg": "none"}, goodClaims()), testFunction)
	f.Add(handToken(f, testKey, map[string]any{"alg": "EdDSA", "crit": []string{"x"}}, goodClaims()), testFunction)
	f.Add(handToken(f, testKey, goodHeader, with("exp", 1e300)), testFunction)
	f.Add(handToken(f, testKey, goodHeader, with("iat", -1<<63, "nbf", 1<<62)), testFunction)
	f.Add("", "")
	f.Add("..", "")
	f.Add("e30.e30.", "")
	sentinels := []error{ErrMissing, ErrMalformed, ErrBadSignature, ErrExpired, ErrNotYetValid,
		ErrWrongIssuer, ErrWrongAudience, ErrWrongFunction, ErrRevoked}
	f.Fuzz(func(t *testing.T, tok, functionID string) {
		c, err := ver.Verify(tok, functionID)
		if err != nil {
			if c != nil {
				t.Fatal("claims returned with an error")
			}
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %q wraps %d sentinels, want 1", err, n)
			}
			if HTTPStatus(err) == 500 {
				t.Fatalf("error %q maps to 500", err)
			}
			return
		}
		if c.FunctionID != functionID || c.Issuer != testIssuer || len(tok) > MaxTokenLen {
			t.Fatalf("accepted token with claims %+v", c)
		}
		p, err := Parse(tok)
		if err != nil || *p != *c {
			t.Fatalf("Parse = %+v, %v; Verify = %+v", p, err, c)
		}
		// Anything accepted must really be signed by the key: the
		// signature segment verifies over the first two segments.
		i := strings.LastIndexByte(tok, '.')
		sig, err := b64.Strict().DecodeString(tok[i+1:])
		if err != nil || !ed25519.Verify(testKey.Public().(ed25519.PublicKey), []byte(tok[:i]), sig) {
			t.Fatal("accepted a token whose signature does not verify")
		}
	})
}

// FuzzParse checks that Parse never panics and only returns well-formed
// claims.
func FuzzParse(f *testing.F) {
	iss, _, _, _ := fixture(f)
	valid, _, err := iss.Mint(testFunction, testChecksum, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(handToken(f, nil, map[string]any{"alg": "none"}, goodClaims()))
	f.Add(handToken(f, testKey, goodHeader, with("aud", []string{"a", "b"})))
	f.Add("")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := Parse(tok)
		if err != nil {
			if c != nil || !(errors.Is(err, ErrMissing) || errors.Is(err, ErrMalformed)) {
				t.Fatalf("Parse = %v, %v", c, err)
			}
			return
		}
		if checkFunctionID(c.FunctionID) != nil || checkChecksum(c.FunctionChecksum) != nil || !isLowerHex(c.ID, 32) || c.Issuer == "" {
			t.Fatalf("Parse returned ill-formed claims %+v", c)
		}
	})
}
