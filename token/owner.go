package token

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/vouch-dev/vouch/internal/secretfile"
	"io/fs"
	"strings"
)

// OwnerTokenPrefix starts every owner credential.
const OwnerTokenPrefix = "vouch_owner_"

const (
	ownerSecretLen  = 32
	ownerTokenLen   = len(OwnerTokenPrefix) + 43 // 43 = unpadded base64 of 32 bytes
	maxOwnerFileLen = 1024
)

var (
	// ErrBadOwnerToken: a string is not a well-formed owner credential.
	ErrBadOwnerToken = errors.New("token: malformed owner token")
	// ErrInsecureFile: an owner token file is accessible to users other
	// than its owner.
	ErrInsecureFile = secretfile.ErrInsecure
)

// GenerateOwnerToken returns a new owner credential: [OwnerTokenPrefix]
// followed by the unpadded base64url encoding of 32 bytes from crypto/rand.
func GenerateOwnerToken() (string, error) {
	var b [ownerSecretLen]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("token: cannot generate owner token: %w", err)
	}
	return OwnerTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ValidateOwnerToken reports whether tok has the form of an owner
// credential. The error wraps [ErrBadOwnerToken] and never contains tok.
func ValidateOwnerToken(tok string) error {
	if !strings.HasPrefix(tok, OwnerTokenPrefix) {
		return fmt.Errorf("%w: it does not start with %q", ErrBadOwnerToken, OwnerTokenPrefix)
	}
	if len(tok) != ownerTokenLen {
		return fmt.Errorf("%w: it is %d characters long, want %d", ErrBadOwnerToken, len(tok), ownerTokenLen)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(tok[len(OwnerTokenPrefix):])
	if err != nil || len(b) != ownerSecretLen {
		return fmt.Errorf("%w: the part after %q is not unpadded base64url of %d bytes", ErrBadOwnerToken, OwnerTokenPrefix, ownerSecretLen)
	}
	return nil
}

// CheckOwner reports whether presented is the owner credential expected. It
// hashes both with SHA-256 and compares the hashes in constant time, so the
// time it takes reveals neither the credential nor its length. It returns
// false when presented is empty or expected does not have the length and
// prefix of an owner credential, so an unset or weak expected value never
// grants access.
func CheckOwner(presented, expected string) bool {
	if presented == "" || len(expected) != ownerTokenLen || !strings.HasPrefix(expected, OwnerTokenPrefix) {
		return false
	}
	p := sha256.Sum256([]byte(presented))
	e := sha256.Sum256([]byte(expected))
	return subtle.ConstantTimeCompare(p[:], e[:]) == 1
}

// LoadOwnerTokenFile reads the owner credential from the file at path (as
// given with --owner-token-file). Surrounding whitespace is ignored. The file
// must be a regular file that neither group nor others may access (mode 0600
// or stricter): otherwise the error wraps [ErrInsecureFile] and says how to
// fix it. A file that does not hold a well-formed credential gives an error
// wrapping [ErrBadOwnerToken]; a missing file one wrapping [fs.ErrNotExist].
func LoadOwnerTokenFile(path string) (string, error) {
	data, err := secretfile.Read(path, maxOwnerFileLen)
	if err != nil {
		if errors.Is(err, secretfile.ErrInsecure) {
			return "", fmt.Errorf("token: owner token file: %w", err)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("token: cannot read owner token file: %w", err)
		}
		return "", fmt.Errorf("%w: owner token file: %v", ErrBadOwnerToken, err)
	}
	tok := strings.TrimSpace(string(data))
	if err := ValidateOwnerToken(tok); err != nil {
		return "", fmt.Errorf("token: owner token file %s: %w", path, err)
	}
	return tok, nil
}

// LoadOrCreateOwnerToken returns the owner credential stored in the file at
// path, creating the file with a new credential (see [GenerateOwnerToken])
// if it does not exist; created tells which happened. An existing file is
// checked like [LoadOwnerTokenFile] does. The directory must exist.
//
// A new file appears complete or not at all, and never replaces a file
// another process created meanwhile; that file is then read instead.
func LoadOrCreateOwnerToken(path string) (tok string, created bool, err error) {
	tok, err = LoadOwnerTokenFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return tok, false, err
	}
	tok, err = GenerateOwnerToken()
	if err != nil {
		return "", false, err
	}
	err = secretfile.Create(path, []byte(tok+"\n"))
	if errors.Is(err, fs.ErrExist) {
		// Another process created the file first: use its credential.
		tok, err = LoadOwnerTokenFile(path)
		return tok, false, err
	}
	if err != nil {
		return "", false, fmt.Errorf("token: cannot create owner token file %s: %w", path, err)
	}
	return tok, true, nil
}
