//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyResign delivers SIGUSR1, the signal to resign, to ch.
func notifyResign(ch chan os.Signal) bool {
	signal.Notify(ch, syscall.SIGUSR1)
	return true
}
