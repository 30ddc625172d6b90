// Command vouch is the vouch CLI: the runtime (enclave), the node, the demo
// and the tools around them. It only parses flags and calls packages.
//
// Terminal rules (after FiloSottile/age's cmd/age/tui.go), which cmdline.UI
// prints by for vouch and vouch-bench alike:
//
//   - Results go to stdout; everything else to stderr. Help asked for
//     (`vouch help`, -h) is a result: stdout, exit code 0.
//   - Errors print as "vouch: error: …", followed when useful by
//     "vouch: hint: …" with what to do next. Exit code 1 on error, 2 on a
//     usage error (unknown command or flag, bad arguments).
//   - Nothing secret is ever printed, except the owner credential once, when
//     the runtime creates it.
//   - Wherever a SIMULATED attestation appears, the output says SIMULATED.
package main

import "os"

func main() {
	os.Exit(doMain(os.Args[1:], os.Stdout, os.Stderr))
}
