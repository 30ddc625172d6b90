package enclave

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/token"
)

// tokenCacheSize bounds how many verified tokens are remembered.
const tokenCacheSize = 4096

// tokenCache remembers tokens that verified, so that a client running the
// same function again pays a hash and a map lookup instead of a signature
// check. An entry is used only until the token expires; revoking any token
// empties the cache, and a restart starts empty.
type tokenCache struct {
	mu      sync.Mutex
	entries map[[32]byte]cachedToken
	// gen counts revocations: a check that started before a revocation
	// must not put its token back into the cache after it.
	gen uint64
}

type cachedToken struct {
	functionID string
	id         string
	expires    time.Time
}

// verify checks a function token and returns its ID (jti).
func (c *tokenCache) verify(v *token.Verifier, tok, functionID string, now time.Time) (string, error) {
	if tok == "" {
		return "", token.ErrMissing
	}
	key := sha256.Sum256([]byte(tok))
	c.mu.Lock()
	e, ok := c.entries[key]
	gen := c.gen
	c.mu.Unlock()
	if ok && e.functionID == functionID && now.Before(e.expires) {
		return e.id, nil
	}
	claims, err := v.Verify(tok, functionID)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if c.gen == gen {
		if c.entries == nil || len(c.entries) >= tokenCacheSize {
			c.entries = make(map[[32]byte]cachedToken)
		}
		c.entries[key] = cachedToken{functionID: functionID, id: claims.ID, expires: claims.ExpiresAt}
	}
	c.mu.Unlock()
	return claims.ID, nil
}

func (c *tokenCache) forget() {
	c.mu.Lock()
	c.entries = nil
	c.gen++
	c.mu.Unlock()
}
