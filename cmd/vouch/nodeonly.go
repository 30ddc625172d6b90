//go:build nodeonly

package main

// nodeOnly is true in the node-only build (go build -tags nodeonly): its
// command table has the node's commands only, so the binary links no wasm
// runtime, raft or bbolt, and a node process maps fewer pages of it.
const nodeOnly = true
