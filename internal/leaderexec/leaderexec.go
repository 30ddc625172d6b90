// Package leaderexec supervises the command a node runs while it leads
// (vouch node --exec, vouch lock) and the hooks it runs when the leader
// changes (--on-leader-change). The command runs in its own process group;
// when the leadership ends it gets SIGTERM, then SIGKILL after a grace
// period, and Run returns only once it has exited, so that a node can stop
// acting before it lets another node lead.
package leaderexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"time"
)

// Command is what to run and how to stop it.
type Command struct {
	// Args is the command and its arguments; Args[0] is looked up in PATH.
	Args []string
	// Env is added to the node's environment (VOUCH_LEADER and so on).
	Env []string
	// Grace is how long the command has to exit after SIGTERM before it
	// (its whole process group) gets SIGKILL; zero means 10 s.
	Grace time.Duration
	// Stdout and Stderr receive the command's output; nil means the
	// node's own.
	Stdout, Stderr io.Writer
	// Signalled, if set, is called once, with the time, when the command
	// is sent SIGTERM because ctx ended (for logs and measurements).
	Signalled func(at time.Time)
}

// DefaultGrace is the grace period when Command.Grace is zero.
const DefaultGrace = 10 * time.Second

// Result is how a run ended.
type Result struct {
	// Exited is true when the command exited on its own while ctx was
	// still live; false when it was stopped because ctx ended.
	Exited bool
	// Killed is true when it had to be sent SIGKILL after the grace.
	Killed bool
	// Err is the command's exit error (nil for status 0).
	Err error
}

// ErrStart wraps the error of a command that could not be started.
var ErrStart = errors.New("cannot start the command")

// Run starts the command and waits until it exits. When ctx ends first,
// it sends SIGTERM to the command's process group, SIGKILL after the
// grace period, and returns once the command has exited. ctx is checked
// with Err every poll as well as through Done, so a leadership context
// whose lease ran out during a pause of this process stops the command at
// the first check after the pause.
func Run(ctx context.Context, c Command) (Result, error) {
	if len(c.Args) == 0 {
		return Result{}, fmt.Errorf("%w: no command given", ErrStart)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err // the leadership ended before the command could start
	}
	cmd := exec.Command(c.Args[0], c.Args[1:]...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = c.Stdout, c.Stderr
	if cmd.Stdout == nil {
		cmd.Stdout = os.Stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	newGroup(cmd)
	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		// One thread starts and waits for the command: the kernel's
		// parent-death signal follows the thread, not the process.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return Result{}, fmt.Errorf("%w %q: %w", ErrStart, c.Args[0], err)
	}
	grace := c.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case err := <-exited:
			killGroup(cmd) // what it left behind in its group must not act on
			return Result{Exited: true, Err: err}, nil
		case <-ctx.Done():
		case <-poll.C:
			if ctx.Err() == nil {
				continue
			}
		}
		break
	}
	if c.Signalled != nil {
		c.Signalled(time.Now())
	}
	termGroup(cmd)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-exited:
		killGroup(cmd)
		return Result{Err: err}, nil
	case <-t.C:
	}
	killGroup(cmd)
	return Result{Killed: true, Err: <-exited}, nil
}
