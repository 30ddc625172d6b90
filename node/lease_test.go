package node

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock whose timers fire only when the test says so, as a
// process frozen by SIGSTOP sees its clock jump with no timer run yet.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_000_000, 0)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) after(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ft := &fakeTimer{at: c.t.Add(d), f: f}
	c.timers = append(c.timers, ft)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !ft.stopped
		ft.stopped = true
		return was
	}
}

// jump moves the clock without firing timers.
func (c *fakeClock) jump(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fire runs the timers that are due and not stopped.
func (c *fakeClock) fire() {
	c.mu.Lock()
	var due []*fakeTimer
	for _, ft := range c.timers {
		if !ft.stopped && !ft.at.After(c.t) {
			ft.stopped = true
			due = append(due, ft)
		}
	}
	c.mu.Unlock()
	for _, ft := range due {
		ft.f()
	}
}

func isDone(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// A process frozen past its lease resumes: its clock has passed the lease
// end but no timer has run. Its first check must see the lease as over.
func TestLeaseContextExpiresAtFirstCheckAfterAPause(t *testing.T) {
	clk := newFakeClock()
	until := clk.now().Add(600 * time.Millisecond)
	ctx := newLeaseCtx(7, until, clk.now, clk.after)
	if d, ok := ctx.Deadline(); !ok || !d.Equal(until) {
		t.Fatalf("Deadline() = %v, %v; want %v, true", d, ok, until)
	}
	if ctx.Err() != nil || isDone(ctx) {
		t.Fatalf("live lease: Err %v, done %v", ctx.Err(), isDone(ctx))
	}
	clk.jump(599 * time.Millisecond)
	if ctx.Err() != nil {
		t.Fatalf("1 ms before the lease end: Err %v", ctx.Err())
	}
	clk.jump(time.Millisecond) // exactly the lease end; no timer fired
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("at the lease end, before any timer: Err %v, want DeadlineExceeded", err)
	}
	if !isDone(ctx) {
		t.Fatal("Err reported the end but Done is open")
	}
	if ctx.renew(clk.now().Add(time.Second)) {
		t.Fatal("a renewal brought an ended leadership back")
	}
	clk.fire() // the late timer finds it ended: no double close
	if d, _ := ctx.Deadline(); !d.Equal(until) {
		t.Fatalf("Deadline after the end = %v, want %v", d, until)
	}
}

// Done alone (a select with a default) also sees the pause.
func TestLeaseContextDoneChecksTheClock(t *testing.T) {
	clk := newFakeClock()
	ctx := newLeaseCtx(1, clk.now().Add(time.Second), clk.now, clk.after)
	clk.jump(2 * time.Second)
	if !isDone(ctx) {
		t.Fatal("Done open after the lease end")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err %v", ctx.Err())
	}
}

// Done closes when the timer fires at the lease end, for a leader that
// waits on it.
func TestLeaseContextTimerClosesDone(t *testing.T) {
	clk := newFakeClock()
	ctx := newLeaseCtx(1, clk.now().Add(time.Second), clk.now, clk.after)
	ended := make(chan struct{})
	go func() { <-ctx.Done(); close(ended) }()
	clk.mu.Lock()
	clk.t = clk.t.Add(time.Second)
	clk.mu.Unlock()
	clk.fire()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed by the timer")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err %v", ctx.Err())
	}
}

// Renewals move the deadline, and the timer of an old lease end does not
// end a renewed lease.
func TestLeaseContextRenewalsExtend(t *testing.T) {
	clk := newFakeClock()
	start := clk.now()
	ctx := newLeaseCtx(1, start.Add(600*time.Millisecond), clk.now, clk.after)
	clk.jump(150 * time.Millisecond)
	next := start.Add(750 * time.Millisecond)
	if !ctx.renew(next) {
		t.Fatal("renewal refused while the lease runs")
	}
	if d, ok := ctx.Deadline(); !ok || !d.Equal(next) {
		t.Fatalf("Deadline after renewal = %v, want %v", d, next)
	}
	clk.jump(500 * time.Millisecond) // past the first lease end, before the renewed one
	clk.fire()
	if ctx.Err() != nil || isDone(ctx) {
		t.Fatalf("the old lease's timer ended a renewed lease: %v", ctx.Err())
	}
	clk.jump(100 * time.Millisecond) // the renewed end
	clk.fire()
	if !isDone(ctx) || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("renewed lease over: done %v, Err %v", isDone(ctx), ctx.Err())
	}
}

// A timer that fires early by the context's clock re-arms instead of
// ending the lease.
func TestLeaseContextEarlyTimer(t *testing.T) {
	clk := newFakeClock()
	ctx := newLeaseCtx(1, clk.now().Add(time.Second), clk.now, clk.after)
	clk.mu.Lock()
	ft := clk.timers[0]
	clk.mu.Unlock()
	ft.f() // fires with the clock still at the start
	if ctx.Err() != nil {
		t.Fatalf("an early timer ended the lease: %v", ctx.Err())
	}
	clk.jump(time.Second)
	clk.fire()
	if !isDone(ctx) {
		t.Fatal("the re-armed timer did not end the lease")
	}
}

// Loss cancels; without a lease (member list) only loss ends it.
func TestLeaseContextCancel(t *testing.T) {
	clk := newFakeClock()
	ctx := newLeaseCtx(3, time.Time{}, clk.now, clk.after)
	if _, ok := ctx.Deadline(); ok {
		t.Fatal("a leadership without a lease has a deadline")
	}
	clk.jump(24 * time.Hour)
	if ctx.Err() != nil {
		t.Fatalf("a leadership without a lease ended by itself: %v", ctx.Err())
	}
	ctx.cancel()
	ctx.cancel()
	if !isDone(ctx) || !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("after cancel: done %v, Err %v", isDone(ctx), ctx.Err())
	}
	if ctx.renew(clk.now().Add(time.Second)) {
		t.Fatal("a renewal brought a lost leadership back")
	}

	leased := newLeaseCtx(4, clk.now().Add(time.Second), clk.now, clk.after)
	leased.cancel()
	if !errors.Is(leased.Err(), context.Canceled) {
		t.Fatalf("lost before its lease end: Err %v, want Canceled", leased.Err())
	}
	clk.jump(2 * time.Second)
	clk.fire()
	if !errors.Is(leased.Err(), context.Canceled) {
		t.Fatalf("Err changed after the end: %v", leased.Err())
	}
}

// A lease that has already run out when the leadership would start gives
// a context that is over from the start.
func TestLeaseContextStartsExpired(t *testing.T) {
	clk := newFakeClock()
	ctx := newLeaseCtx(1, clk.now(), clk.now, clk.after)
	if !isDone(ctx) || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("done %v, Err %v", isDone(ctx), ctx.Err())
	}
}

// Contexts derived with the standard library end with it: WithCancel
// follows the moving deadline, WithTimeout takes the lease end at its
// creation as its own bound.
func TestLeaseContextDerived(t *testing.T) {
	clk := newFakeClock()
	start := clk.now()
	ctx := newLeaseCtx(1, start.Add(time.Second), clk.now, clk.after)
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	ctx.renew(start.Add(2 * time.Second))
	if d, _ := child.Deadline(); !d.Equal(start.Add(2 * time.Second)) {
		t.Fatalf("WithCancel child's deadline %v, want the renewed lease end", d)
	}
	clk.jump(2 * time.Second)
	clk.fire()
	select {
	case <-child.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the derived context did not end with the lease")
	}
	if !errors.Is(child.Err(), context.DeadlineExceeded) {
		t.Fatalf("derived Err %v", child.Err())
	}
}

// The loop stopping a leadership whose lease has already run out (its
// timer not yet run) does not relabel the end a loss.
func TestLeaseContextCancelAfterTheEnd(t *testing.T) {
	clk := newFakeClock()
	ctx := newLeaseCtx(1, clk.now().Add(time.Second), clk.now, clk.after)
	clk.jump(time.Second)
	ctx.cancel()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err %v, want DeadlineExceeded", ctx.Err())
	}
}
