// Command build builds the built-in function in the current directory to
// WebAssembly with the one recipe of package wasmbuild (reproducible and
// hermetic, the Go toolchain pinned). Each built-in's gen.go runs it:
//
//	//go:generate go run github.com/vouch-dev/vouch/functions/internal/build leader.wasm
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vouch-dev/vouch/internal/wasmbuild"
)

func main() {
	if len(os.Args) != 2 || filepath.Ext(os.Args[1]) != ".wasm" {
		fmt.Fprintln(os.Stderr, "usage: go run github.com/vouch-dev/vouch/functions/internal/build NAME.wasm (from a built-in's folder)")
		os.Exit(2)
	}
	out, err := filepath.Abs(os.Args[1])
	if err == nil {
		err = wasmbuild.Build(".", ".", out, true)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
}
