//go:build !unix

package leaderexec

import (
	"os"
	"os/exec"
)

// Without process groups the command alone is signalled.
func newGroup(cmd *exec.Cmd) {}

func termGroup(cmd *exec.Cmd) { cmd.Process.Signal(os.Interrupt) }

func killGroup(cmd *exec.Cmd) { cmd.Process.Kill() }
