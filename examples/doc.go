// Package examples tests the example functions in its subfolders: each is
// deployed to a real runtime and run (docs/FUNCTIONS.md). c-echo is C built
// with wasi-libc; go-echo is Go built with the guest package.
package examples
