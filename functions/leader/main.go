// Command leader is vouch's built-in leader-election function.
//
// Input:  {"cluster":"demo","node_list":["5000","5001","5002"]}
// Output: {"cluster":"demo","leader":"5002","members":["5000","5001","5002"],
//
//	"members_digest":"<sha256 hex>"}
//
// node_list's elements may also be numbers, as the original demo sent them:
// a non-negative integer without fraction or exponent, at most 2^53, names
// the member of its decimal string ({"node_list":[1,2]} is ["1","2"]). A bad
// input is refused with a code that passes for sealed inputs too
// (guest.Refuse; docs/FORMATS.md, "Leader function input and output").
//
// The policy is the original demo's: the highest member ID wins, compared
// numerically when every ID is a decimal number and byte-wise otherwise.
// members is node_list sorted the same way; members_digest is the SHA-256 of
// the members joined by newlines (docs/FORMATS.md, "Members digest").
//
// It builds reproducibly as a WASI reactor; see gen.go.
package main

import "github.com/vouch-dev/vouch/guest"

func init() { guest.Handle(handle) }

func main() { guest.Main() }
