package node

import (
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/vouch-dev/vouch/election"
)

type nopRuntime struct{}

func (nopRuntime) Elect(context.Context, string, []string) (*election.Certificate, error) {
	return nil, context.Canceled
}
func (nopRuntime) Key(context.Context) (ed25519.PublicKey, error) { return nil, context.Canceled }
func (nopRuntime) Submit(context.Context, []byte) (*election.Certificate, error) {
	return nil, context.Canceled
}
func (nopRuntime) Describe() RuntimeInfo { return RuntimeInfo{} }

// FuzzReceive feeds arbitrary gossip messages to a node's decoder: nothing
// may panic, and only well-formed certificates goodbyes and resignations
// that name a member reach the node's loop.
func FuzzReceive(f *testing.F) {
	f.Add([]byte{msgCert})
	f.Add([]byte{9, 1, 2})
	f.Add([]byte{msgGoodbye})
	f.Add(append([]byte{msgGoodbye}, "5001"...))
	f.Add(append([]byte{msgResign}, "5002"...))
	f.Add(append([]byte{msgCert}, (&election.Certificate{Output: []byte("{}")}).Encode()...))
	cfg := DefaultLocalConfig()
	cfg.InsecureGossip = true // never gossips
	cfg.Name, cfg.Runtime, cfg.FunctionID, cfg.Checksum = "fuzz", nopRuntime{}, "f", "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	n, err := New(*cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n.receive(b, "fuzz")
		for len(n.inbox) > 0 {
			switch in := <-n.inbox; in.kind {
			case inCert:
				if in.cert == nil || b[0] != msgCert {
					t.Fatalf("%q reached the core as a certificate input without a certificate", b)
				}
			case inGoodbye, inResigned:
				want := map[inputKind]byte{inGoodbye: msgGoodbye, inResigned: msgResign}[in.kind]
				if b[0] != want || in.from != string(b[1:]) || in.from == "" || len(in.from) > maxGoodbyeName {
					t.Fatalf("%q became a goodbye or resignation from %q", b, in.from)
				}
			default:
				t.Fatalf("%q became an input of kind %v", b, in.kind)
			}
		}
	})
}
