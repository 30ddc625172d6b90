//go:build unix && !linux

package leaderexec

import (
	"os/exec"
	"syscall"
)

// newGroup starts the command in a process group of its own, so that a
// signal reaches everything it started. Without Linux's Pdeathsig, a
// command outlives a node killed with SIGKILL.
func newGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }
