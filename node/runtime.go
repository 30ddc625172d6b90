package node

import (
	"context"
	"crypto/ed25519"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/election"
)

// ClientRuntime is a Runtime reached through the client SDK: it attests the
// runtime, checks the function's checksum before sending anything, seals
// each request and verifies each receipt. Given a client of several
// replicas (client.NewReplicas with api.Ref.URLs), it fails over between
// them as the client does.
type ClientRuntime struct {
	c   *client.Client
	ref client.FunctionRef
}

// NewClientRuntime returns a Runtime that calls function ref through c.
// ref.Checksum may be in upper or lower case (api.NormalizeChecksum).
func NewClientRuntime(c *client.Client, ref client.FunctionRef) *ClientRuntime {
	if sum, err := api.NormalizeChecksum(ref.Checksum); err == nil {
		ref.Checksum = sum
	}
	return &ClientRuntime{c: c, ref: ref}
}

// Elect implements Runtime.
func (r *ClientRuntime) Elect(ctx context.Context, cluster string, ids []string) (*election.Certificate, error) {
	res, err := r.c.Run(ctx, r.ref, election.Request(cluster, ids))
	if err != nil {
		return nil, err
	}
	return &election.Certificate{Output: res.Output, Receipt: res.Receipt}, nil
}

// Submit implements Runtime.
func (r *ClientRuntime) Submit(ctx context.Context, input []byte) (*election.Certificate, error) {
	res, err := r.c.Run(ctx, r.ref, input)
	if err != nil {
		return nil, err
	}
	return &election.Certificate{Output: res.Output, Receipt: res.Receipt}, nil
}

// Key implements Runtime.
func (r *ClientRuntime) Key(ctx context.Context) (ed25519.PublicKey, error) {
	id, err := r.c.Identity(ctx)
	if err != nil {
		return nil, err
	}
	return id.ReceiptKey, nil
}

// Describe implements Runtime.
func (r *ClientRuntime) Describe() RuntimeInfo {
	info := RuntimeInfo{URL: r.c.Replica(), FunctionID: r.ref.ID, Checksum: r.ref.Checksum}
	if urls := r.c.URLs(); len(urls) > 1 {
		info.Replicas = urls
	}
	if id := r.c.Cached(); id != nil {
		info.Platform, info.Simulated, info.KeyID, info.ReplicaID = id.Platform, id.Simulated, id.KeyID, id.ReplicaID
	}
	return info
}
