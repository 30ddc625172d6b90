package node

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrNotLeader is returned by Resign on a node that does not lead.
var ErrNotLeader = errors.New("node: not the leader")

// Resign hands the leadership over gracefully (docs/ELECTION.md,
// "Resigning"). It stops acting first: the leadership context is
// cancelled, OnStoppedLeading runs, and Resign waits for OnStartedLeading
// to return (at most ResignWait, or until ctx ends). Only then does the
// node leave the election for ResignHold and tell its peers, so that they
// certify a leader without it. It returns ErrNotLeader, and changes
// nothing, when this node does not lead.
func (n *Node) Resign(ctx context.Context) error {
	if !n.started.Load() || n.ml == nil {
		return ErrStopped
	}
	if err := n.ask(ctx, inStepDown); err != nil {
		return err
	}
	n.waitActing(ctx, n.cfg.ResignWait)
	return n.ask(ctx, inResign)
}

// ask hands the loop an input and waits until it has been handled.
func (n *Node) ask(ctx context.Context, kind inputKind) error {
	errc := make(chan error, 1)
	select {
	case n.inbox <- input{kind: kind, errc: errc}:
	case <-n.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-errc:
		return err
	case <-n.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitActing waits for the latest OnStartedLeading callback to return,
// at most d or until ctx ends.
func (n *Node) waitActing(ctx context.Context, d time.Duration) {
	n.actMu.Lock()
	done := n.actDone
	n.actMu.Unlock()
	if done == nil {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		n.log.Warn("the leader's work did not end in time after its leadership ended; going on", "waited", d)
	case <-ctx.Done():
	}
}

// announceResign tells every member, over TCP with a UDP fallback, that
// this node resigned.
func (n *Node) announceResign() {
	msg := append([]byte{msgResign}, n.cfg.Name...)
	var wg sync.WaitGroup
	for _, m := range n.members.list() {
		if m.name == n.cfg.Name {
			continue
		}
		wg.Add(1)
		go func(to *memberlist.Node) {
			defer wg.Done()
			if n.ml.SendReliable(to, msg) != nil {
				n.ml.SendBestEffort(to, msg)
			}
		}(m.node())
	}
	go wg.Wait()
}

// Run starts the node, blocks until ctx ends, and then leaves the cluster:
// the shape of client-go's LeaderElector.Run. With ReleaseOnCancel a
// leader resigns first and waits (at most ResignWait) until a certificate
// names its successor. It returns Start's error, or Shutdown's
// (ErrLeaveTimeout when peers could not confirm the leave). Start, by
// contrast, returns once the node runs, and the node runs until Shutdown
// whatever becomes of Start's ctx.
func (n *Node) Run(ctx context.Context) error {
	if err := n.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-n.done:
		return nil // stopped by Shutdown or Kill meanwhile
	}
	sctx, cancel := context.WithTimeout(context.Background(), n.cfg.ResignWait+5*time.Second)
	defer cancel()
	if n.cfg.ReleaseOnCancel {
		ch, unsub := n.Subscribe()
		if n.Resign(sctx) == nil {
			n.awaitSuccessor(sctx, ch)
		}
		unsub()
	}
	return n.Shutdown(sctx)
}

// awaitSuccessor waits until a leader other than this node is known, at
// most ResignWait; not at all when no other member is there to succeed.
func (n *Node) awaitSuccessor(ctx context.Context, ch <-chan Leadership) {
	if n.ml.NumMembers() < 2 {
		return
	}
	t := time.NewTimer(n.cfg.ResignWait)
	defer t.Stop()
	for {
		if l := n.Leader(); l.Leader != "" && l.Leader != n.cfg.Name {
			return
		}
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// SubscribeContext is Subscribe bound to ctx: the channel receives the
// leadership every time the leader changes and is closed when ctx ends or
// the node stops.
func (n *Node) SubscribeContext(ctx context.Context) <-chan Leadership {
	ch, cancel := n.Subscribe()
	go func() {
		select {
		case <-ctx.Done():
			cancel()
		case <-n.done:
		}
	}()
	return ch
}

// newLeaders calls OnNewLeader with every new leader, in order.
func (n *Node) newLeaders(f func(string), ch <-chan Leadership, cancel func()) {
	defer cancel()
	last := ""
	for l := range ch {
		if l.Leader != "" && l.Leader != last {
			last = l.Leader
			f(l.Leader)
		}
	}
}

// loopbackOnly reports whether a request came from this host.
func loopbackOnly(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
