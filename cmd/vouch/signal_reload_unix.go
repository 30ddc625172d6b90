//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyReload delivers SIGHUP, the signal to reload the reference, to ch.
func notifyReload(ch chan os.Signal) bool {
	signal.Notify(ch, syscall.SIGHUP)
	return true
}
