package node

import (
	"context"
	"crypto/ed25519"
	"time"
)

// ObserverMetaKey is the node-meta key, reserved, with which an observer
// (Config.Observer) advertises itself: a member whose meta holds it with
// a non-empty value is an observer. Config.Meta may not use it.
const ObserverMetaKey = "vouch.observer"

// IsObserver reports whether a member's decoded meta (DecodeMeta) marks
// it as an observer.
func IsObserver(meta map[string]string) bool { return meta[ObserverMetaKey] != "" }

// observerMeta returns meta with the observer mark added.
func observerMeta(meta map[string]string) map[string]string {
	out := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		out[k] = v
	}
	out[ObserverMetaKey] = "1"
	return out
}

// attester is a Runtime that can attest afresh (ClientRuntime): Key may
// return a cached key.
type attester interface {
	Attest(ctx context.Context) (ed25519.PublicKey, error)
}

// attest runs the observer's attestation (the machine's Attest effect),
// afresh when the runtime can, and posts the answer to the loop.
func (n *Node) attest() {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.CallTimeout)
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var key ed25519.PublicKey
	var err error
	if a, ok := n.cfg.Runtime.(attester); ok {
		key, err = a.Attest(ctx)
	} else {
		key, err = n.cfg.Runtime.Key(ctx)
	}
	select {
	case n.inbox <- input{kind: inAttested, key: key, err: err, sentAt: time.Now()}:
	case <-n.stop:
	}
}
