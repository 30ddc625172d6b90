// Package servicekeys holds a replicated runtime's service keys: the
// secrets every replica of one service shares, created once by the replica
// that bootstraps the service and handed to each joiner sealed to its
// attested key (docs/FORMATS.md, "Service keys").
//
// Keys are created with crypto/rand. Subkeys for storage and for the
// replicas' TLS authority are derived from Secret with HKDF-SHA256, so
// they never travel on their own.
package servicekeys

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/vouch-dev/vouch/internal/canon"
	"github.com/vouch-dev/vouch/receipt"
	"github.com/vouch-dev/vouch/seal"
	"github.com/vouch-dev/vouch/token"
)

// Tag starts an encoded Keys value.
const Tag = "vouch-service-keys-v1"

// SecretLen is the length of Keys.Secret.
const SecretLen = 32

// HKDF info strings of the derived subkeys.
const (
	infoStorage = "vouch service storage v1"
	infoTLSCA   = "vouch service replica tls ca v1"
)

// Keys are one service's shared secrets. Never log them: String and
// GoString print only the service's key ID.
type Keys struct {
	// Receipt signs receipts and function statements (Ed25519).
	Receipt ed25519.PrivateKey
	// Token signs function tokens (Ed25519).
	Token ed25519.PrivateKey
	// HPKE opens sealed inputs (X25519).
	HPKE *seal.PrivateKey
	// OwnerToken is the service's owner credential.
	OwnerToken string
	// Secret is 32 random bytes that the storage and TLS keys derive from.
	Secret []byte
}

// Generate creates a new service's keys with crypto/rand.
func Generate() (*Keys, error) {
	var k Keys
	var err error
	if _, k.Receipt, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return nil, err
	}
	if _, k.Token, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return nil, err
	}
	if k.HPKE, err = seal.GenerateKey(); err != nil {
		return nil, err
	}
	if k.OwnerToken, err = token.GenerateOwnerToken(); err != nil {
		return nil, err
	}
	k.Secret = make([]byte, SecretLen)
	if _, err := rand.Read(k.Secret); err != nil {
		return nil, err
	}
	return &k, nil
}

// KeyID is the service's identity: the receipt key's fingerprint
// (receipt.KeyID), the one identity clients pin.
func (k *Keys) KeyID() string { return receipt.KeyID(k.Receipt.Public().(ed25519.PublicKey)) }

// String names the keys by the service's key ID only.
func (k *Keys) String() string { return "servicekeys.Keys{key_id: " + k.KeyID() + "}" }

// GoString is String, so that %#v prints no secret either.
func (k *Keys) GoString() string { return k.String() }

// StorageKey is the 32-byte key that a replica's raft log, stable store and
// snapshots are encrypted and authenticated under.
func (k *Keys) StorageKey() []byte { return k.derive(infoStorage, 32) }

// TLSAuthority is the Ed25519 key that signs the replicas' TLS
// certificates: only holders of the service keys (attested replicas) can
// make a certificate the others accept.
func (k *Keys) TLSAuthority() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(k.derive(infoTLSCA, ed25519.SeedSize))
}

func (k *Keys) derive(info string, n int) []byte {
	out, err := hkdf.Key(sha256.New, k.Secret, nil, info, n)
	if err != nil {
		panic("servicekeys: hkdf: " + err.Error()) // only for n out of range
	}
	return out
}

// Marshal encodes the keys (canonical, docs/FORMATS.md): the tag, then the
// receipt seed, the token seed, the HPKE private key, the owner token and
// the secret, each length-prefixed. The result is secret: seal it before it
// leaves the process.
func (k *Keys) Marshal() []byte {
	return canon.New(Tag).Bytes(k.Receipt.Seed()).Bytes(k.Token.Seed()).Bytes(k.HPKE.Bytes()).String(k.OwnerToken).Bytes(k.Secret).Message()
}

// ErrMalformed is wrapped by every Unmarshal error.
var ErrMalformed = errors.New("servicekeys: malformed service keys")

// Unmarshal decodes Marshal's encoding; anything else is refused.
func Unmarshal(b []byte) (*Keys, error) {
	r := canon.NewReader(b)
	if tag := r.String(); r.Err() == nil && tag != Tag {
		return nil, fmt.Errorf("%w: tag %q, want %q", ErrMalformed, tag, Tag)
	}
	rs, ts, hk, owner, secret := r.Bytes(), r.Bytes(), r.Bytes(), r.String(), r.Bytes()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(rs) != ed25519.SeedSize || len(ts) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: Ed25519 seeds must be %d bytes", ErrMalformed, ed25519.SeedSize)
	}
	if len(secret) != SecretLen {
		return nil, fmt.Errorf("%w: secret must be %d bytes", ErrMalformed, SecretLen)
	}
	if err := token.ValidateOwnerToken(owner); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	h, err := seal.NewPrivateKey(hk)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE key: %v", ErrMalformed, err)
	}
	return &Keys{
		Receipt:    ed25519.NewKeyFromSeed(rs),
		Token:      ed25519.NewKeyFromSeed(ts),
		HPKE:       h,
		OwnerToken: owner,
		Secret:     secret,
	}, nil
}
