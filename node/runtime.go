package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync/atomic"

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
	ref atomic.Pointer[client.FunctionRef] // swapped whole by Reload
}

// NewClientRuntime returns a Runtime that calls function ref through c.
// ref.Checksum may be in upper or lower case (api.NormalizeChecksum).
func NewClientRuntime(c *client.Client, ref client.FunctionRef) *ClientRuntime {
	if sum, err := api.NormalizeChecksum(ref.Checksum); err == nil {
		ref.Checksum = sum
	}
	r := &ClientRuntime{c: c}
	r.ref.Store(&ref)
	return r
}

// Reload swaps the function token used from the next call on: calls in
// flight finish with the old one. It refuses a reference for another
// function (ID or checksum), which would change what the cluster runs.
func (r *ClientRuntime) Reload(ref client.FunctionRef) error {
	if sum, err := api.NormalizeChecksum(ref.Checksum); err == nil {
		ref.Checksum = sum
	}
	old := r.ref.Load()
	if ref.ID != old.ID || ref.Checksum != old.Checksum {
		return fmt.Errorf("the new reference is for function %s (checksum %s), but this node runs %s (checksum %s); restart the node to change the function",
			ref.ID, ref.Checksum, old.ID, old.Checksum)
	}
	if ref.Token == "" {
		return fmt.Errorf("the new reference has no function token")
	}
	r.ref.Store(&ref)
	return nil
}

// Elect implements Runtime.
func (r *ClientRuntime) Elect(ctx context.Context, cluster string, ids []string) (*election.Certificate, error) {
	res, err := r.c.Run(ctx, *r.ref.Load(), election.Request(cluster, ids))
	if err != nil {
		return nil, err
	}
	return &election.Certificate{Output: res.Output, Receipt: res.Receipt}, nil
}

// Submit implements Runtime.
func (r *ClientRuntime) Submit(ctx context.Context, input []byte) (*election.Certificate, error) {
	res, err := r.c.Run(ctx, *r.ref.Load(), input)
	if err != nil {
		return nil, err
	}
	return &election.Certificate{Output: res.Output, Receipt: res.Receipt}, nil
}

// Attest attests the runtime afresh, replacing the client's cached
// identity, and returns its receipt key. An observer uses it when a
// certificate does not verify under the key it holds: a node learns of a
// new key through its calls, an observer makes none.
func (r *ClientRuntime) Attest(ctx context.Context) (ed25519.PublicKey, error) {
	id, err := r.c.Attest(ctx)
	if err != nil {
		return nil, err
	}
	return id.ReceiptKey, nil
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
	ref := r.ref.Load()
	info := RuntimeInfo{URL: r.c.Replica(), FunctionID: ref.ID, Checksum: ref.Checksum}
	if urls := r.c.URLs(); len(urls) > 1 {
		info.Replicas = urls
	}
	if id := r.c.Cached(); id != nil {
		info.Platform, info.Simulated, info.KeyID, info.ReplicaID = id.Platform, id.Simulated, id.KeyID, id.ReplicaID
	}
	return info
}
