// Command leader is vouch's built-in leader-election function.
//
// Input:  {"cluster":"demo","node_list":["5000","5001","5002"]}
// Output: {"cluster":"demo","leader":"5002","members":["5000","5001","5002"],
//
//	"members_digest":"<sha256 hex>"}
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
