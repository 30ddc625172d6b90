//go:build linux

package main

import (
	"os/exec"
	"syscall"
)

// dieWithTest has the kernel kill a runtime process if the test binary
// dies first (a timeout panic, a kill -9), so that none is left behind.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
