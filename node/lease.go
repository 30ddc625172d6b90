package node

import (
	"context"
	"sync"
	"time"
)

// leaseCtx is the context a leadership runs under (OnStartedLeading's
// ctx). A standard context's deadline cannot move, and a leader's lease
// moves with every renewal, so this is its own type:
//
//   - Deadline reports the current lease end (none in the member-list
//     scheme, which has no lease);
//   - Err compares the clock with the lease end on every call, so a
//     process that resumes after a pause (SIGSTOP, a long GC) sees
//     context.DeadlineExceeded at its first check, before any timer
//     goroutine has run; Done does the same check before it returns;
//   - Done closes at the lease end (a timer) or when the leadership is
//     lost or the node stops (Err is then context.Canceled);
//   - renew moves the lease end while the context is live; once it has
//     ended it never comes back, and the node starts a new leadership.
type leaseCtx struct {
	now      func() time.Time
	afterFn  func(time.Duration, func()) func() bool // time.AfterFunc, or a fake in tests
	token    uint64
	done     chan struct{}
	mu       sync.Mutex
	until    time.Time // zero: no lease (member-list scheme)
	err      error
	stopTime func() bool
}

// newLeaseCtx returns a live leadership context whose lease ends at until
// (zero: never), timed by now and after.
func newLeaseCtx(token uint64, until time.Time, now func() time.Time, after func(time.Duration, func()) func() bool) *leaseCtx {
	c := &leaseCtx{now: now, afterFn: after, token: token, done: make(chan struct{}), until: until}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !until.IsZero() && !now().Before(until) {
		c.endLocked(context.DeadlineExceeded)
		return c
	}
	c.armLocked()
	return c
}

// realAfter is time.AfterFunc in the shape leaseCtx takes.
func realAfter(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// armLocked starts the timer that closes Done at the lease end.
func (c *leaseCtx) armLocked() {
	if c.stopTime != nil {
		c.stopTime()
		c.stopTime = nil
	}
	if c.until.IsZero() {
		return
	}
	until := c.until
	c.stopTime = c.afterFn(until.Sub(c.now()), func() { c.expire(until) })
}

// expire ends the context if its lease still ends at until and the clock
// has passed it; a renewal since the timer was armed re-armed it.
func (c *leaseCtx) expire(until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || !c.until.Equal(until) {
		return
	}
	if c.now().Before(until) {
		c.armLocked() // the timer fired early by the context's clock
		return
	}
	c.endLocked(context.DeadlineExceeded)
}

// checkLocked ends the context when the clock has passed the lease end.
func (c *leaseCtx) checkLocked() {
	if c.err == nil && !c.until.IsZero() && !c.now().Before(c.until) {
		c.endLocked(context.DeadlineExceeded)
	}
}

func (c *leaseCtx) endLocked(err error) {
	c.err = err
	if c.stopTime != nil {
		c.stopTime()
		c.stopTime = nil
	}
	close(c.done)
}

// renew moves the lease end to until and reports whether the leadership
// goes on: false when the context had already ended (the clock passed the
// old lease end first, or it was cancelled).
func (c *leaseCtx) renew(until time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkLocked()
	if c.err != nil {
		return false
	}
	if c.until.Equal(until) {
		return true
	}
	c.until = until
	c.checkLocked()
	if c.err != nil {
		return false
	}
	c.armLocked()
	return true
}

// cancel ends the leadership: lost, or the node stops. A lease that has
// run out by then ended at its deadline, and says so.
func (c *leaseCtx) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkLocked()
	if c.err == nil {
		c.endLocked(context.Canceled)
	}
}

// Deadline returns the current lease end; ok is false without a lease.
func (c *leaseCtx) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.until, !c.until.IsZero()
}

// Done returns a channel closed when the leadership ends. It checks the
// clock first, so after a pause it is closed already.
func (c *leaseCtx) Done() <-chan struct{} {
	c.mu.Lock()
	c.checkLocked()
	c.mu.Unlock()
	return c.done
}

// Err returns nil while the lease runs, context.DeadlineExceeded once the
// clock has passed the lease end, context.Canceled after a loss.
func (c *leaseCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkLocked()
	return c.err
}

// Value carries no values.
func (c *leaseCtx) Value(any) any { return nil }

func (c *leaseCtx) String() string { return "node.leadershipContext" }
