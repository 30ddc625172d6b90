//go:build !nodeonly

package main

// nodeOnly is false in the default build, which has every command.
const nodeOnly = false
