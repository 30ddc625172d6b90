package node

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/node/internal/nodecore"
)

// tick is how often the machine runs its periodic checks.
const tick = 100 * time.Millisecond

// loop owns the machine: it turns each input into a Step, carries out the
// Ready, and wakes the machine with one timer.
func (n *Node) loop() {
	defer close(n.done)
	timer := time.NewTimer(tick)
	defer timer.Stop()
	n.step(nodecore.Input{Kind: nodecore.View})
	for {
		select {
		case <-n.stop:
			n.stopLeading()
			n.publish()
			return
		case in := <-n.inbox:
			batch := n.drain(in)
			for i := 0; i < len(batch); i++ {
				if batch[i].kind == inView {
					// A run of membership changes: one view refresh.
					j := i + 1
					for j < len(batch) && batch[j].kind == inView {
						j++
					}
					n.stepViews(batch[i:j])
					i = j - 1
					continue
				}
				n.handle(batch[i])
			}
			clear(batch)
		case <-timer.C:
			n.step(nodecore.Input{Kind: nodecore.Tick})
		}
		n.publishDue(time.Now()) // the leadership changed with notify is in the key: published now
		n.deliver()
		timer.Reset(max(time.Until(n.wake), 0))
	}
}

// maxBatch bounds the inputs the loop takes from its inbox at once.
const maxBatch = 256

// drain returns in and the inputs already waiting behind it, up to
// maxBatch: while a large cluster forms, memberlist reports many changes
// at once, and the machine refreshes its view once for a run of them.
// Nothing waits for a batch: drain takes only what has arrived.
func (n *Node) drain(in input) []input {
	n.batch = append(n.batch[:0], in)
	for len(n.batch) < maxBatch {
		select {
		case next := <-n.inbox:
			n.batch = append(n.batch, next)
		default:
			return n.batch
		}
	}
	return n.batch
}

// handle steps one input other than a membership change and answers its
// caller.
func (n *Node) handle(in input) {
	var err error
	if in.kind == inStepDown && n.lead == nil {
		err = ErrNotLeader // nothing to hand over
	} else {
		n.step(n.machineInput(in))
	}
	if in.errc != nil {
		n.publish()
		in.errc <- err
	}
	if in.kind == inSync {
		n.publish() // what the caller reads next is current
		close(in.reply)
	}
}

// machineInput translates a loop input.
func (n *Node) machineInput(in input) nodecore.Input {
	switch in.kind {
	case inView:
		mi := nodecore.Input{Kind: nodecore.View, From: in.from, How: in.departed}
		if in.departed != "" {
			mi.Known = n.members.goneAddr(in.from) != nil
		}
		return mi
	case inCert:
		return nodecore.Input{Kind: nodecore.Certificate, From: in.from, Cert: in.cert}
	case inElected:
		return nodecore.Input{Kind: nodecore.CallResult, Cert: in.cert, Key: in.key, Err: in.err, SentAt: in.sentAt}
	case inGoodbye:
		return nodecore.Input{Kind: nodecore.Goodbye, From: in.from}
	case inPing:
		return nodecore.Input{Kind: nodecore.SuspectPing, From: in.from, Err: in.err}
	case inWatch:
		return nodecore.Input{Kind: nodecore.WatchPing, From: in.from, Err: in.err, SentAt: in.sentAt}
	case inPresented:
		return nodecore.Input{Kind: nodecore.Presented, Err: in.err, Moved: in.moved}
	case inResigned:
		return nodecore.Input{Kind: nodecore.PeerResigned, From: in.from}
	case inStepDown:
		return nodecore.Input{Kind: nodecore.StepDown}
	case inResign:
		return nodecore.Input{Kind: nodecore.Resign}
	case inAttested:
		return nodecore.Input{Kind: nodecore.Attested, Key: in.key, Err: in.err}
	}
	return nodecore.Input{Kind: nodecore.Sync}
}

// step feeds the machine the current membership and one input, with the
// clock read now, and carries out its Ready.
func (n *Node) step(in nodecore.Input) {
	n.syncMembers()
	in.Now = time.Now()
	n.apply(n.sm.Step(in))
}

// stepViews steps a run of membership changes at once (Machine.Steps).
func (n *Node) stepViews(ins []input) {
	n.syncMembers()
	now := time.Now()
	mis := n.viewInputs[:0]
	for _, in := range ins {
		mi := n.machineInput(in)
		mi.Now = now
		mis = append(mis, mi)
	}
	n.viewInputs = mis
	n.apply(n.sm.Steps(mis))
}

// syncMembers gives the machine memberlist's members if they changed.
func (n *Node) syncMembers() {
	if n.members.version() != n.memberVer || n.memberVer == 0 {
		names, ver := n.members.names()
		n.sm.SetMembers(names)
		n.memberVer = ver
	}
	if n.leaving.Load() {
		n.sm.Leave()
	}
}

// apply carries out a Ready.
func (n *Node) apply(rd nodecore.Ready) {
	n.wake = rd.Wake
	ended := false
	for _, e := range rd.Effects {
		if !n.effect(e) {
			ended = true
		}
	}
	n.leading = n.sm.Leading()
	n.viewChanges, n.verdicts = n.sm.Counters()
	if ended {
		n.step(nodecore.Input{Kind: nodecore.LeaseEnded})
	}
}

// effect carries out one effect. It returns false when a Renew found the
// leadership context already ended by the clock.
func (n *Node) effect(e nodecore.Effect) bool {
	switch e.Kind {
	case nodecore.Log:
		n.log.Log(context.Background(), e.Level, e.Msg, e.Attrs...)
	case nodecore.Count:
		n.count(e.Metric, e.Label)
	case nodecore.Gauge:
		n.gauge(e.Metric, e.Value)
	case nodecore.Accepted:
		if e.TermOut != nil {
			n.events.acceptedTerm(e.Cert, e.TermOut)
		} else {
			n.events.accepted(e.Cert, e.Outcome)
		}
	case nodecore.Persist:
		n.saveFloorCert(e.Cert)
		n.saveSeq(e.Seq)
	case nodecore.Present:
		go n.present(e.Cert)
	case nodecore.Relay:
		n.relay(e.Cert, e.Seq, e.Direct)
	case nodecore.Call:
		go n.call(func(ctx context.Context) (*election.Certificate, error) {
			return n.cfg.Runtime.Elect(ctx, n.cfg.Cluster, e.View)
		}, time.Time{})
	case nodecore.Submit:
		go n.call(func(ctx context.Context) (*election.Certificate, error) {
			return n.cfg.Runtime.Submit(ctx, e.Body)
		}, e.SentAt)
	case nodecore.StartLeading:
		n.startLeading(e.Token, e.Until)
	case nodecore.StopLeading:
		n.stopLeading()
	case nodecore.Renew:
		if n.lead != nil && !n.lead.renew(e.Until) {
			return false
		}
	case nodecore.Ping:
		if addr := n.members.goneAddr(e.Member); addr != nil {
			go func(name string, addr net.Addr) {
				_, err := n.ml.Ping(name, addr)
				n.post(input{kind: inPing, from: name, err: err})
			}(e.Member, addr)
		} else {
			n.post(input{kind: inPing, from: e.Member, err: errors.New("no address")})
		}
	case nodecore.Join:
		if addr := n.members.goneAddr(e.Member); addr != nil {
			go n.ml.Join([]string{addr.String()})
		}
	case nodecore.Watch:
		n.startPinger(e.Member)
	case nodecore.Unwatch:
		if stop, ok := n.watchStop[e.Member]; ok {
			close(stop)
			delete(n.watchStop, e.Member)
		}
	case nodecore.Notify:
		n.notify()
	case nodecore.Forget:
		n.members.forget(e.Member)
	case nodecore.Announce:
		n.announceResign()
	case nodecore.Attest:
		go n.attest()
	}
	return true
}

// call runs one runtime call (an election or a view submission) and posts
// the answer to the loop.
func (n *Node) call(run func(context.Context) (*election.Certificate, error), sentAt time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.CallTimeout)
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	start := time.Now()
	key, err := n.cfg.Runtime.Key(ctx)
	var cert *election.Certificate
	if err == nil {
		cert, err = run(ctx)
	}
	n.metrics.callSeconds.Observe(time.Since(start).Seconds())
	select {
	case n.inbox <- input{kind: inElected, cert: cert, err: err, key: key, sentAt: sentAt}:
	case <-n.stop:
	}
}

// startLeading starts a leadership whose fencing token is token: the seq
// (signed views: the term) of the certificate that started it. With
// signed views the context's deadline is the lease end, until; the
// member-list scheme has no lease.
func (n *Node) startLeading(token uint64, until time.Time) {
	if n.lead != nil {
		n.stopLeading()
	}
	n.log.Info("I AM THE LEADER", "seq", token, "fencing_token", token)
	n.metrics.isLeader.Set(1)
	n.events.acted(token)
	ctx := newLeaseCtx(token, until, time.Now, realAfter)
	n.lead, n.token = ctx, token
	n.leadPub.Store(ctx)
	if f := n.cfg.OnStartedLeading; f != nil {
		done := make(chan struct{})
		n.actMu.Lock()
		n.actDone = done
		n.actMu.Unlock()
		go func() {
			defer close(done)
			f(ctx, token)
		}()
	}
}

func (n *Node) stopLeading() {
	if n.lead == nil {
		return
	}
	n.lead.cancel()
	// A lease that ran out ended the leadership at its deadline, which
	// may be earlier than this line: say when (chaos.Leaderships reads it).
	var attrs []any
	if dl, ok := n.lead.Deadline(); ok && errors.Is(n.lead.Err(), context.DeadlineExceeded) {
		attrs = append(attrs, "lease_end", dl.UTC().Format(time.RFC3339Nano))
	}
	n.lead, n.token = nil, 0 // leadPub keeps it: Leader shows its lease end
	n.metrics.isLeader.Set(0)
	n.log.Info("stopped leading", attrs...)
	if f := n.cfg.OnStoppedLeading; f != nil {
		go f()
	}
}
