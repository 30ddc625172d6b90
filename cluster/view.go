package cluster

import (
	"crypto/ed25519"
	"slices"

	"github.com/vouch-dev/vouch/election/members"
)

// SignView signs a view with the node's key, filling in Key.
func SignView(v View, key ed25519.PrivateKey) (*SignedView, error) {
	v.Key = key.Public().(ed25519.PublicKey)
	set, err := members.New(v.Alive)
	if err != nil {
		return nil, err
	}
	v.Alive = slices.Clone(set.IDs())
	if err := v.Check(); err != nil {
		return nil, err
	}
	return &SignedView{View: v, Signature: ed25519.Sign(key, v.Message())}, nil
}
