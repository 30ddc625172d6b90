package leaderexec

import (
	"os/exec"
	"syscall"
)

// newGroup starts the command in a process group of its own, so that a
// signal reaches everything it started, and has the kernel SIGKILL it if
// the node dies first (SIGKILL, a crash): a leader's command must not
// outlive the node that leads. Pdeathsig follows the thread that started
// the command, so Run starts and waits for it on one locked thread.
func newGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
