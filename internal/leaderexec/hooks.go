package leaderexec

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// Hooks runs a shell command (sh -c) on every leader change, with the
// change's certificate on stdin. It never blocks its caller: at most Max
// hooks run at once, and while all are busy only the latest change waits
// (an older waiting one is dropped: a hook learns the state, not every
// step). Each hook is killed, with its process group, after Timeout.
type Hooks struct {
	Cmd     string
	Timeout time.Duration // zero: 30 s
	Max     int           // zero: 4
	Stdout  io.Writer     // nil: os.Stdout
	Stderr  io.Writer     // nil: os.Stderr
	// Done, if set, is called after each hook with its error.
	Done func(err error)

	mu      sync.Mutex
	running int
	waiting *hookRun
	wg      sync.WaitGroup
}

type hookRun struct {
	stdin []byte
	env   []string
}

// Fire runs the hook for one change, now or when a slot frees.
func (h *Hooks) Fire(stdin []byte, env []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := &hookRun{stdin: stdin, env: env}
	if h.running >= h.max() {
		h.waiting = r // the latest wins
		return
	}
	h.start(r)
}

// Wait waits for the running hooks (and the one waiting) to finish.
func (h *Hooks) Wait() { h.wg.Wait() }

func (h *Hooks) max() int {
	if h.Max <= 0 {
		return 4
	}
	return h.Max
}

// start runs r in a goroutine; h.mu is held.
func (h *Hooks) start(r *hookRun) {
	h.running++
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		err := h.run(r)
		if h.Done != nil {
			h.Done(err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.running--
		if next := h.waiting; next != nil {
			h.waiting = nil
			h.start(next)
		}
	}()
}

func (h *Hooks) run(r *hookRun) error {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", h.Cmd)
	cmd.Env = append(os.Environ(), r.env...)
	cmd.Stdin = bytes.NewReader(r.stdin)
	cmd.Stdout, cmd.Stderr = h.Stdout, h.Stderr
	if cmd.Stdout == nil {
		cmd.Stdout = os.Stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	newGroup(cmd)
	cmd.Cancel = func() error { killGroup(cmd); return nil }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("hook killed after %v: %w", timeout, err)
	}
	return err
}
