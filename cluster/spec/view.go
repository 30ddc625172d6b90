package spec

import (
	"crypto/ed25519"
	"fmt"
	"slices"
	"time"

	"github.com/vouch-dev/vouch/election/members"
	"github.com/vouch-dev/vouch/internal/canon"
)

// View is one member's signed statement of whom it sees alive.
type View struct {
	Cluster string `json:"cluster"`
	Node    string `json:"node"`
	// Seq grows with every view the node signs; the runtime refuses a
	// view whose seq is not above the last one it took from that node.
	Seq uint64 `json:"seq"`
	// TimeMillis is the node's clock, Unix milliseconds.
	TimeMillis int64 `json:"time_ms"`
	// Alive lists the members the node sees alive, itself included, in
	// member order.
	Alive []string `json:"alive"`
	// Key is the node's public key; the runtime uses it to register the
	// node in an open cluster and otherwise checks it against the
	// configuration.
	Key []byte `json:"key"`
}

// SignedView is a view with the node's signature.
type SignedView struct {
	View      View   `json:"view"`
	Signature []byte `json:"signature"`
}

// ViewTag starts a view's canonical encoding.
const ViewTag = "vouch/view/v1"

// Message returns the canonical bytes a node signs:
//
//	String(tag) String(cluster) String(node) Uint64(seq) Int64(time_ms)
//	Bytes(key) Uint64(n) { String(id) } * n
func (v *View) Message() []byte {
	b := canon.New(ViewTag).String(v.Cluster).String(v.Node).Uint64(v.Seq).Int64(v.TimeMillis).Bytes(v.Key).Uint64(uint64(len(v.Alive)))
	for _, id := range v.Alive {
		b.String(id)
	}
	return b.Message()
}

// Time returns the view's time.
func (v *View) Time() time.Time { return time.UnixMilli(v.TimeMillis) }

// Check validates a view's form.
func (v *View) Check() error {
	if err := members.ValidCluster(v.Cluster); err != nil {
		return fmt.Errorf("%w: view: %v", ErrInvalid, err)
	}
	if err := members.ValidID(v.Node); err != nil {
		return fmt.Errorf("%w: view: %v", ErrInvalid, err)
	}
	if v.Seq == 0 {
		return fmt.Errorf("%w: view seq must be at least 1", ErrInvalid)
	}
	if len(v.Key) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: view key must be a %d-byte Ed25519 public key", ErrInvalid, ed25519.PublicKeySize)
	}
	if len(v.Alive) == 0 {
		return fmt.Errorf("%w: a view lists at least its own node", ErrInvalid)
	}
	set, err := members.New(v.Alive)
	if err != nil {
		return fmt.Errorf("%w: view: %v", ErrInvalid, err)
	}
	if !slices.Equal(set.IDs(), v.Alive) {
		return fmt.Errorf("%w: view lists members out of member order", ErrInvalid)
	}
	if !set.Contains(v.Node) {
		// A running node sees itself: a view that leaves its own node out
		// is a bug or a lie, and refusing it keeps "a member's fresh view
		// counts for that member" true.
		return fmt.Errorf("%w: the view of %q does not list %q itself among the alive", ErrInvalid, v.Node, v.Node)
	}
	return nil
}

// Verify checks a view's form and that it is signed by its own key.
// Whether that key belongs to the node is for the caller to decide.
func (s *SignedView) Verify() error { return s.VerifyWith(ed25519Verify) }

// VerifyWith is Verify with the signature checked by verify.
func (s *SignedView) VerifyWith(verify SigVerifier) error {
	if err := s.View.Check(); err != nil {
		return err
	}
	if len(s.Signature) != ed25519.SignatureSize || !verify(s.View.Key, s.View.Message(), s.Signature) {
		return fmt.Errorf("%w: view from %q", ErrSignature, s.View.Node)
	}
	return nil
}
