// Package spec defines a vouch cluster's signed documents, its
// configuration and its members' views: their canonical encodings (package
// canon, docs/FORMATS.md, "Cluster configuration" and "Views"), their
// checks, the verification of their signatures, and how each policy picks
// a leader. It is pure Go without I/O and imports no vouch package but
// leaves, because the election function, compiled to WebAssembly, runs it:
// nothing here may depend on node-side code.
//
// Package cluster re-exports it and adds what only owners and nodes do:
// signing, parsing files, defaults.
package spec

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/vouch-dev/vouch/election/members"
	"github.com/vouch-dev/vouch/internal/canon"
)

// Policies.
const (
	PolicyHighest = "highest" // the highest member ID wins (the original rule)
	PolicyLowest  = "lowest"  // the lowest member ID wins
	PolicyFair    = "fair"    // uniform, from a secret only the runtime knows
	PolicyStake   = "stake"   // weighted by stake, the same way
)

// Policies lists the valid policies.
var Policies = []string{PolicyHighest, PolicyLowest, PolicyFair, PolicyStake}

// ErrInvalid is wrapped by every error about a malformed configuration or
// view; ErrSignature by every signature that does not verify.
var (
	ErrInvalid   = errors.New("invalid cluster configuration")
	ErrSignature = errors.New("signature does not verify")
)

// Member is one configured member.
type Member struct {
	ID    string `json:"id"`
	Key   []byte `json:"key"`             // Ed25519 public key
	Stake uint64 `json:"stake,omitempty"` // weight under the stake policy; 0 means 1
}

// Config is a cluster's configuration.
type Config struct {
	Cluster string `json:"cluster"`
	// Version orders configurations; a newer one must be higher.
	Version uint64 `json:"version"`
	// Owner is the Ed25519 key that signs configurations.
	Owner  []byte `json:"owner"`
	Policy string `json:"policy"`
	// Open lets unknown members register on first contact (trust on first
	// use). For demos: anyone who can reach the runtime may join.
	Open bool `json:"open,omitempty"`
	// LeaseMillis is how long a leader may act after the runtime last
	// confirmed it, and how long the runtime waits after it last heard
	// from a leader before replacing it.
	LeaseMillis int64 `json:"lease_ms"`
	// ViewTTLMillis is how long a view counts as fresh.
	ViewTTLMillis int64    `json:"view_ttl_ms"`
	Members       []Member `json:"members"`
}

// Signed is a configuration with its owner's signature.
type Signed struct {
	Config    Config `json:"config"`
	Signature []byte `json:"signature"`
}

// Lease returns the configured lease.
func (c *Config) Lease() time.Duration { return time.Duration(c.LeaseMillis) * time.Millisecond }

// ViewTTL returns how long a view stays fresh.
func (c *Config) ViewTTL() time.Duration { return time.Duration(c.ViewTTLMillis) * time.Millisecond }

// Member returns the member with id, or nil.
func (c *Config) Member(id string) *Member {
	for i := range c.Members {
		if c.Members[i].ID == id {
			return &c.Members[i]
		}
	}
	return nil
}

// Check validates a configuration.
func (c *Config) Check() error {
	if err := members.ValidCluster(c.Cluster); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if c.Version == 0 {
		return fmt.Errorf("%w: version must be at least 1", ErrInvalid)
	}
	if len(c.Owner) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: owner key must be a %d-byte Ed25519 public key", ErrInvalid, ed25519.PublicKeySize)
	}
	if !slices.Contains(Policies, c.Policy) {
		return fmt.Errorf("%w: policy %q is not one of %v", ErrInvalid, c.Policy, Policies)
	}
	if c.LeaseMillis < 100 || c.LeaseMillis > 600_000 {
		return fmt.Errorf("%w: lease_ms %d is outside 100..600000", ErrInvalid, c.LeaseMillis)
	}
	if c.ViewTTLMillis < 100 || c.ViewTTLMillis > 600_000 {
		return fmt.Errorf("%w: view_ttl_ms %d is outside 100..600000", ErrInvalid, c.ViewTTLMillis)
	}
	if len(c.Members) == 0 && !c.Open {
		return fmt.Errorf("%w: a closed cluster needs at least one member", ErrInvalid)
	}
	if len(c.Members) > members.MaxMembers {
		return fmt.Errorf("%w: %d members, more than %d", ErrInvalid, len(c.Members), members.MaxMembers)
	}
	ids := make([]string, len(c.Members))
	var total uint64
	for i, m := range c.Members {
		ids[i] = m.ID
		if len(m.Key) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: member %q: key must be a %d-byte Ed25519 public key", ErrInvalid, m.ID, ed25519.PublicKeySize)
		}
		w := max(m.Stake, 1)
		if total+w < total {
			return fmt.Errorf("%w: the members' stakes add up to more than %d (at member %q): the stake policy could never draw a leader; use smaller stakes", ErrInvalid, uint64(math.MaxUint64), m.ID)
		}
		total += w
	}
	if len(ids) > 0 {
		set, err := members.New(ids)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if !slices.Equal(set.IDs(), ids) {
			return fmt.Errorf("%w: members must be listed in member order (%v)", ErrInvalid, set.IDs())
		}
	}
	return nil
}

// Normalize sorts the members into member order.
func (c *Config) Normalize() {
	ids := make([]string, len(c.Members))
	for i, m := range c.Members {
		ids[i] = m.ID
	}
	set, err := members.New(ids)
	if err != nil {
		return
	}
	byID := map[string]Member{}
	for _, m := range c.Members {
		byID[m.ID] = m
	}
	for i, id := range set.IDs() {
		c.Members[i] = byID[id]
	}
}

// ConfigTag starts a configuration's canonical encoding.
const ConfigTag = "vouch/cluster-config/v1"

// Message returns the canonical bytes the owner signs:
//
//	String(tag) String(cluster) Uint64(version) Bytes(owner) String(policy)
//	Uint64(open 0|1) Int64(lease_ms) Int64(view_ttl_ms) Uint64(n)
//	{ String(id) Bytes(key) Uint64(stake) } * n   (in member order)
func (c *Config) Message() []byte {
	b := canon.New(ConfigTag).String(c.Cluster).Uint64(c.Version).Bytes(c.Owner).String(c.Policy)
	open := uint64(0)
	if c.Open {
		open = 1
	}
	b.Uint64(open).Int64(c.LeaseMillis).Int64(c.ViewTTLMillis).Uint64(uint64(len(c.Members)))
	for _, m := range c.Members {
		b.String(m.ID).Bytes(m.Key).Uint64(m.Stake)
	}
	return b.Message()
}

// Digest returns the configuration digest: lowercase hex SHA-256 of
// Message.
func (c *Config) Digest() string {
	sum := sha256.Sum256(c.Message())
	return hex.EncodeToString(sum[:])
}

// SigVerifier reports whether sig is a valid Ed25519 signature of msg by
// pub, as crypto/ed25519.Verify does. The VerifyWith methods take one so
// that code running in the runtime's sandbox can let the host verify
// (guest.VerifyEd25519).
type SigVerifier func(pub, msg, sig []byte) bool

func ed25519Verify(pub, msg, sig []byte) bool { return ed25519.Verify(pub, msg, sig) }

// Verify checks the configuration and its signature under its own owner
// key. Whether that owner is the right one is for the caller to decide.
func (s *Signed) Verify() error { return s.VerifyWith(ed25519Verify) }

// VerifyWith is Verify with the signature checked by verify.
func (s *Signed) VerifyWith(verify SigVerifier) error {
	if err := s.Config.Check(); err != nil {
		return err
	}
	if len(s.Signature) != ed25519.SignatureSize || !verify(s.Config.Owner, s.Config.Message(), s.Signature) {
		return fmt.Errorf("%w: cluster configuration is not signed by its owner key", ErrSignature)
	}
	return nil
}
