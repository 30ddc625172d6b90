package main

// election.wasm is built with the one recipe for the embedded functions
// (package internal/wasmbuild: reproducible, hermetic, the Go toolchain
// pinned). TestEmbeddedFunctionsAreReproducible rebuilds it and fails if
// the bytes differ, and functions/testdata/checksums.txt holds its
// checksum. Rebuild it with:
//
//	go generate ./functions/election
//
//go:generate go run github.com/vouch-dev/vouch/functions/internal/build election.wasm
