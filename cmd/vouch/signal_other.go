//go:build !unix

package main

import "os"

// notifyResign: no SIGUSR1 here; use vouch node resign.
func notifyResign(ch chan os.Signal) bool { return false }
