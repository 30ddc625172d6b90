package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/election"
)

// idleRuntime is a runtime the test never calls (the node is not started).
type idleRuntime struct{}

func (idleRuntime) Elect(context.Context, string, []string) (*election.Certificate, error) {
	return nil, errors.New("not called")
}
func (idleRuntime) Key(context.Context) (ed25519.PublicKey, error) {
	return nil, errors.New("not called")
}
func (idleRuntime) Submit(context.Context, []byte) (*election.Certificate, error) {
	return nil, errors.New("not called")
}
func (idleRuntime) Describe() RuntimeInfo { return RuntimeInfo{Platform: "test"} }

// The loop refreshes /status after an input only when what matters
// changed, or the snapshot is publishEvery old: a full snapshot lists
// every member, and rebuilding it after each of the tens of inputs a
// second (leader-watch pings, memberlist events) saturated two cores with
// 100 nodes in one process.
func TestPublishDue(t *testing.T) {
	cfg := DefaultLocalConfig()
	cfg.InsecureGossip = true // never gossips
	cfg.Name, cfg.Cluster, cfg.Runtime = "5000", "demo", idleRuntime{}
	cfg.FunctionID, cfg.Checksum = "fn", strings.Repeat("ab", 32)
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := New(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.core = election.New(election.Config{Self: cfg.Name}) // as Start does, without the network
	n.publish()
	now := n.pubAt
	first := n.Status()
	n.publishDue(now.Add(publishEvery / 2))
	if n.Status() != first {
		t.Fatal("republished although nothing changed and the snapshot is fresh")
	}
	for _, c := range []struct {
		what   string
		change func()
	}{
		{"the fencing token", func() { n.token++ }},
		{"a leader-watch verdict", func() { n.verdicts++ }},
		{"leading", func() { n.leading = !n.leading }},
	} {
		before := n.Status()
		c.change()
		mid := n.Status()
		n.publishDue(n.pubAt.Add(time.Millisecond))
		if n.Status() == before || n.Status() == mid {
			t.Fatalf("%s changed and the snapshot was not republished at the end of the input", c.what)
		}
	}
	// A change of the view alone (every join, while a cluster forms)
	// waits for publishEvery.
	n.viewChanges++
	before := n.Status()
	n.publishDue(n.pubAt.Add(publishEvery / 2))
	if n.Status() != before {
		t.Fatal("a change of the view alone was published before publishEvery")
	}
	n.publishDue(n.pubAt.Add(publishEvery))
	if n.Status() == before {
		t.Fatal("a snapshot publishEvery old was not refreshed")
	}

	// A leadership change the loop notifies in the middle of an input
	// reaches subscribers once the input is handled, as published.
	ch, cancel := n.Subscribe()
	defer cancel()
	n.token = 42
	n.notify()
	select {
	case l := <-ch:
		t.Fatalf("delivered in the middle of an input: %+v", l)
	default:
	}
	n.publishDue(n.pubAt.Add(time.Millisecond))
	n.deliver()
	select {
	case l := <-ch:
		if l.Token != 42 || n.Status().FencingToken != 42 {
			t.Fatalf("delivered %+v with the snapshot's token %d, want 42 in both", l, n.Status().FencingToken)
		}
	default:
		t.Fatal("a notified leadership change was not delivered after the input")
	}
}

// The member list is rebuilt at most every memberStatusMin while the
// membership or the view change, at once for a leader-watch verdict,
// every memberStatusEvery regardless, and fresh on demand.
func TestMemberStatusDue(t *testing.T) {
	last := memberStatusKey{members: 3, view: 4, verdict: 5}
	for _, c := range []struct {
		fresh bool
		k     memberStatusKey
		age   time.Duration
		want  bool
	}{
		{false, last, 0, false},
		{false, memberStatusKey{members: 4, view: 4, verdict: 5}, memberStatusMin - time.Millisecond, false},
		{false, memberStatusKey{members: 3, view: 5, verdict: 5}, memberStatusMin - time.Millisecond, false},
		{false, memberStatusKey{members: 3, view: 5, verdict: 5}, memberStatusMin, true},
		{false, memberStatusKey{members: 3, view: 4, verdict: 6}, 0, true},
		{false, last, memberStatusEvery - time.Millisecond, false},
		{false, last, memberStatusEvery, true},
		{true, last, 0, true},
	} {
		if got := memberStatusDue(c.fresh, c.k, last, c.age); got != c.want {
			t.Errorf("memberStatusDue(%v, %+v, %v) = %v, want %v", c.fresh, c.k, c.age, got, c.want)
		}
	}
}

// The loop takes what waits in its inbox together, in order, up to
// maxBatch, so that a run of membership changes refreshes the view once.
func TestDrain(t *testing.T) {
	n := &Node{inbox: make(chan input, 2*maxBatch)}
	for i := range 2*maxBatch - 1 {
		n.inbox <- input{kind: inView, from: strconv.Itoa(i)}
	}
	first := <-n.inbox
	batch := n.drain(first)
	if len(batch) != maxBatch || batch[0].from != "0" || batch[maxBatch-1].from != strconv.Itoa(maxBatch-1) {
		t.Fatalf("drain took %d inputs, %q to %q; want %d in order", len(batch), batch[0].from, batch[len(batch)-1].from, maxBatch)
	}
	if got := n.drain(<-n.inbox); len(got) != maxBatch-1 {
		t.Fatalf("second drain took %d inputs, want the %d left", len(got), maxBatch-1)
	}
	if got := n.drain(input{kind: inSync}); len(got) != 1 {
		t.Fatalf("drain of an empty inbox took %d inputs, want only the first", len(got))
	}
}
