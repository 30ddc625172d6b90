package main

// leader.wasm is built reproducibly: trimmed paths, no VCS stamp, no build
// ID, no symbol tables, and the Go toolchain pinned (see
// internal/harness/testbuild.GoVersion). TestEmbeddedFunctionsAreReproducible rebuilds
// it and fails if the bytes differ. Rebuild it with:
//
//	go generate ./functions/leader
//
//go:generate env GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 GOTOOLCHAIN=go1.26.8 go build -trimpath -buildvcs=false -buildmode=c-shared "-ldflags=-s -w -buildid=" -o leader.wasm .
