// Command election is vouch's stateful election function: members submit
// signed views, the function keeps each cluster's state inside the runtime,
// counts a member alive when a strict majority of fresh views include it,
// and issues exactly one leader certificate per term.
//
// Input:  {"config": <signed cluster configuration, optional>,
//
//	"view": <signed view>}
//
// Output: {"cluster","config_digest","term","leader","members_digest",
//
//	"issued_at_ms","lease_ms","policy","mode"}
//
// Refusal: the invocation fails with a refusal in the runtime's public
// format (docs/API.md, "Refusals"; package outcome lists the codes)
//
//	vouch-refusal:lease_not_renewed: lease not renewed: ...
//
// whose code reaches sealed callers too, and its message plaintext ones.
//
// See docs/ELECTION.md for the rules and their reasoning. It builds
// reproducibly as a WASI reactor; see gen.go.
package main

import (
	"time"

	"github.com/vouch-dev/vouch/guest"
)

func init() {
	guest.Handle(func(in []byte) ([]byte, error) {
		out, ref := handle(in, guestEnv{})
		if ref != nil {
			return nil, ref // the invocation's error message
		}
		return out, nil
	})
}

func main() { guest.Main() }

// guestEnv is the runtime's state, clocks and randomness.
type guestEnv struct{}

func (guestEnv) get(ns guest.Namespace, key string) ([]byte, bool) { return guest.Get(ns, key) }
func (guestEnv) put(ns guest.Namespace, key string, v []byte)      { guest.Put(ns, key, v) }
func (guestEnv) del(ns guest.Namespace, key string)                { guest.Delete(ns, key) }
func (guestEnv) now() time.Time                                    { return guest.Now() }
func (guestEnv) mono() time.Duration                               { return guest.Monotonic() }
func (guestEnv) random(b []byte)                                   { guest.Random(b) }
