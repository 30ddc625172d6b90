// Package cluster defines a vouch cluster's configuration and the signed
// views its members submit to the runtime's election function.
//
// A configuration names the cluster, its members (ID, Ed25519 public key,
// optional stake) and its election policy, and is signed by the cluster
// owner's Ed25519 key. The election function binds a cluster to the owner
// key of the first configuration it sees, and afterwards accepts a new
// configuration only if it has a higher version and is signed by that same
// owner. In open mode, members register themselves on first contact (trust
// on first use), for demos.
//
// A view is one member's statement, signed with its own key, of which
// members it sees alive, with a per-member sequence number and its time.
// The election function counts a member alive when a strict majority of all
// members' fresh views include it.
//
// Everything signed here is signed over canonical bytes (package canon,
// docs/FORMATS.md, "Cluster configuration" and "Views"). The documents,
// their checks and their verification are defined in package spec, which
// the election function, compiled to WebAssembly, shares with the nodes;
// this package re-exports them and adds what only owners and nodes do:
// signing, parsing files, defaults. Code here never changes the election
// function's bytes.
package cluster

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/vouch-dev/vouch/cluster/spec"
	"github.com/vouch-dev/vouch/election/members"
	"github.com/vouch-dev/vouch/internal/strictjson"
)

// Policies.
const (
	PolicyHighest = spec.PolicyHighest // the highest member ID wins (the original rule)
	PolicyLowest  = spec.PolicyLowest  // the lowest member ID wins
	PolicyFair    = spec.PolicyFair    // uniform, from a secret only the runtime knows
	PolicyStake   = spec.PolicyStake   // weighted by stake, the same way
)

// Policies lists the valid policies.
var Policies = spec.Policies

// Tags that start the canonical encodings.
const (
	ConfigTag = spec.ConfigTag
	ViewTag   = spec.ViewTag
	FairTag   = spec.FairTag
)

// ErrInvalid is wrapped by every error about a malformed configuration or
// view; ErrSignature by every signature that does not verify.
var (
	ErrInvalid   = spec.ErrInvalid
	ErrSignature = spec.ErrSignature
)

// The signed documents (package spec).
type (
	// Member is one configured member.
	Member = spec.Member
	// Config is a cluster's configuration.
	Config = spec.Config
	// Signed is a configuration with its owner's signature.
	Signed = spec.Signed
	// View is one member's signed statement of whom it sees alive.
	View = spec.View
	// SignedView is a view with the node's signature.
	SignedView = spec.SignedView
	// SigVerifier reports whether sig is a valid Ed25519 signature of msg
	// by pub.
	SigVerifier = spec.SigVerifier
)

// Pick chooses the leader among alive by the configuration's policy, as
// the election function does (spec.Pick).
func Pick(c *Config, alive *members.Set, secret []byte, term uint64) (string, error) {
	return spec.Pick(c, alive, secret, term)
}

// Defaults for a configuration's timing. A failover waits for the old
// leader's lease to run out after its last renewal; leaders renew every
// lease/4 (docs/ELECTION.md, section 6).
const (
	DefaultLease   = 600 * time.Millisecond
	DefaultViewTTL = time.Second
)

// Sign checks the configuration and signs it with the owner's key, which
// must match Owner.
func Sign(c Config, owner ed25519.PrivateKey) (*Signed, error) {
	c.Normalize()
	if err := c.Check(); err != nil {
		return nil, err
	}
	if !owner.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(c.Owner)) {
		return nil, fmt.Errorf("%w: the signing key is not the configuration's owner key", ErrInvalid)
	}
	return &Signed{Config: c, Signature: ed25519.Sign(owner, c.Message())}, nil
}

// MaxConfigJSON bounds a configuration's JSON.
const MaxConfigJSON = 4 << 20

// ParseSigned decodes a signed configuration strictly and verifies it.
func ParseSigned(data []byte) (*Signed, error) {
	if len(data) > MaxConfigJSON {
		return nil, fmt.Errorf("%w: %d bytes", ErrInvalid, len(data))
	}
	var s Signed
	if err := strictjson.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := s.Verify(); err != nil {
		return nil, err
	}
	return &s, nil
}
