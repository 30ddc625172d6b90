// Package guest is the Go side of a vouch function.
//
// A function registers one handler in an init function and calls Main from
// main:
//
//	func init() { guest.Handle(handle) }
//	func main() { guest.Main() }
//
//	func handle(input []byte) ([]byte, error) { ... }
//
// The same source builds two ways (docs/FORMATS.md, "Guest ABI"):
//
//   - As a WASI command (GOOS=wasip1 GOARCH=wasm go build): the runtime starts
//     a fresh instance per call, the input arrives on stdin and the output is
//     what the handler returns, written to stdout. An error is written to
//     stderr and the module exits with code 1. This is the contract every
//     language can meet.
//   - As a WASI reactor (add -buildmode=c-shared): the module exports
//     vouch_run, and the runtime keeps warm instances and calls the handler
//     again and again without starting a new Go runtime. This is the fast
//     path, about a hundred times cheaper per call.
//
// Built for the host (go test, go run), Main reads stdin and writes stdout,
// so a function can be tested like any Go program.
//
// Warm instances keep their globals between calls of the same function.
// Never rely on that for correctness.
package guest

import (
	"fmt"
	"io"
	"os"
)

// Handler computes a function's output from its input. A returned error
// fails the invocation; its message reaches the caller.
type Handler func(input []byte) ([]byte, error)

var handler Handler

// Handle registers the function's handler. Call it from an init function so
// that it is in place before the runtime's first call in reactor mode.
func Handle(h Handler) {
	if handler != nil {
		panic("guest: Handle called twice")
	}
	handler = h
}

// Main runs the registered handler once over stdin and stdout and exits. In
// reactor builds the runtime never calls main, so Main is only used by
// command builds and host runs.
func Main() {
	os.Exit(run(os.Stdin, os.Stdout, os.Stderr))
}

func run(stdin io.Reader, stdout, stderr io.Writer) int {
	if handler == nil {
		fmt.Fprintln(stderr, "guest: no handler registered (call guest.Handle in init)")
		return 2
	}
	in, err := io.ReadAll(stdin)
	if err != nil {
		fmt.Fprintln(stderr, "guest: reading input:", err)
		return 2
	}
	out, err := handler(in)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintln(stderr, "guest: writing output:", err)
		return 2
	}
	return 0
}
