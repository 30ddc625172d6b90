package node

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"vouch/api"
	"vouch/cluster"
	"vouch/election"
	"vouch/election/outcome"
)

// views reports whether the node runs the signed-views scheme.
func (n *Node) views() bool { return n.cfg.ClusterConfig != nil }

// submission is the election function's input.
type submission struct {
	Config *cluster.Signed     `json:"config,omitempty"`
	View   *cluster.SignedView `json:"view"`
}

// maybeSubmit signs and submits the node's view when it changed or the
// interval passed, one submission at a time.
func (n *Node) maybeSubmit(now time.Time) {
	// The loop calls this after every input: a lease that ran out since
	// the last tick ends here, not at the next tick (see wakeAt).
	n.checkLease(now)
	if n.calling || n.leaving.Load() || now.Before(n.nextCall) {
		return
	}
	if !n.viewDirty && now.Before(n.nextView) {
		return
	}
	alive := n.core.View()
	if len(alive) == 0 {
		return
	}
	n.viewSeq = max(n.viewSeq+1, uint64(now.UnixMicro()))
	sv, err := cluster.SignView(cluster.View{Cluster: n.cfg.Cluster, Node: n.cfg.Name, Seq: n.viewSeq, TimeMillis: now.UnixMilli(), Alive: alive}, n.cfg.Identity)
	if err != nil {
		n.log.Error("cannot sign view", "err", err)
		return
	}
	sub := submission{View: sv}
	// Send the configuration until the runtime's certificates name it.
	if n.configAck != n.cfg.ClusterConfig.Config.Digest() {
		sub.Config = n.cfg.ClusterConfig
	}
	body, err := json.Marshal(sub)
	if err != nil {
		n.log.Error("cannot encode view", "err", err)
		return
	}
	n.calling, n.viewDirty = true, false
	n.nextView = now.Add(n.viewInterval(now))
	n.wakeAt(n.nextView)
	n.metrics.views.Inc()
	go n.submit(body, now)
}

// viewInterval is how long until the next submission. The leader renews
// every min(ViewInterval, lease/4): a successor can take over only once
// the lease has run out after the leader's last renewal, so renewing often
// keeps the failover close to the lease minus a quarter, not minus a whole
// ViewInterval. A node whose leader the leader watch found unreachable
// submits every min(ViewInterval, lease/8) for up to two leases: the
// runtime starts the next term at the first submission after the old
// lease ran out on its side, and waiting a whole ViewInterval for it would
// add up to that much to the failover. Both go out on a timer, not on the
// loop's 100 ms tick.
func (n *Node) viewInterval(now time.Time) time.Duration {
	d := n.cfg.ViewInterval
	_, o := n.term.Held()
	if o == nil || o.Lease() <= 0 {
		return d
	}
	switch {
	case o.Leader == n.cfg.Name:
		d = min(d, o.Lease()/4)
	case n.leaderLostRecently(now, o.Lease()):
		d = min(d, o.Lease()/8)
	}
	return max(d, 10*time.Millisecond)
}

func (n *Node) submit(body []byte, sentAt time.Time) {
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
		cert, err = n.cfg.Runtime.Submit(ctx, body)
	}
	n.metrics.callSeconds.Observe(time.Since(start).Seconds())
	select {
	case n.inbox <- input{kind: inElected, cert: cert, err: err, key: key, sentAt: sentAt}:
	case <-n.stop:
	}
}

// submitted handles the runtime's answer to a view.
func (n *Node) submitted(in input, now time.Time) {
	if in.err != nil && IsLeaseRefusal(in.err) {
		// The runtime answered, but will not renew our lease: a majority
		// does not see us. Not a runtime failure.
		n.calling = false
		n.answered(now)
		n.log.Warn("lease not renewed", "detail", in.err.Error())
		return
	}
	if !n.callDone(in, now) {
		return
	}
	a := n.term.Receive(in.cert)
	var got election.TermOutcome
	json.Unmarshal(in.cert.Output, &got)
	if a.Rejected != nil && a.Rejected.Reason == election.ReasonNoLeader {
		n.log.Debug("no leader yet: waiting for a majority of views")
		n.configAck = got.ConfigDigest
		n.answered(now)
		return
	}
	n.handleTerm(a, "runtime", in.sentAt)
	if why := n.refusal(a.Rejected, got.Term, "term"); why != nil {
		n.refused(now, why)
		return
	}
	n.answered(now)
	if _, o := n.term.Held(); o != nil {
		n.configAck = o.ConfigDigest
		// Our own submission came back naming us: the lease runs from
		// when we sent it, which is before the runtime confirmed it.
		if o.Leader == n.cfg.Name && (a.Accepted != nil || a.Renewed != nil || a.Rejected == nil) {
			n.leaseUntil = in.sentAt.Add(o.Lease() - n.cfg.LeaseMargin)
			n.wakeAt(n.leaseUntil)
		}
	}
	n.checkLease(now)
}

// handleTerm carries out the term core's actions.
func (n *Node) handleTerm(a election.TermActions, source string, sentAt time.Time) {
	if a.Rejected != nil {
		if a.Rejected.Reason != election.ReasonNoLeader {
			n.metrics.rejected.WithLabelValues(string(a.Rejected.Reason)).Inc()
			level := n.log.Warn
			if a.Rejected.Reason == election.ReasonStale {
				level = n.log.Debug
			}
			level("certificate rejected", "reason", a.Rejected.Reason, "from", source, "detail", a.Rejected.Detail)
		}
		return
	}
	if a.Accepted == nil {
		return
	}
	o := a.Outcome
	n.metrics.seq.Set(float64(o.Term))
	n.certFrom, n.certAt = source, time.Now()
	n.events.acceptedTerm(a.Accepted, o)
	n.saveSeq(o.Term)
	cause := ""
	if a.LeaderChanged != nil {
		cause = n.leaderChanged(a.LeaderChanged.Previous)
	}
	n.relay(a.Accepted, o.Term, source == "runtime" && cause == causeFailed)
	n.log.Info("leader is "+o.Leader+" (term "+strconv.FormatUint(o.Term, 10)+")", "leader", o.Leader, "term", o.Term, "policy", o.Policy, "mode", o.Mode, "cause", cause, "from", source)
	if n.leading && o.Leader == n.cfg.Name && n.token != o.Term {
		// A new term that keeps this node as leader (a configuration
		// change, or a runtime that restarted): restart the leadership
		// with the new term as its fencing token, so the token a leader
		// hands to storage is always current. It acts again once its
		// next submission renews its lease under the new term.
		n.log.Info("new term with the same leader: restarting the leadership under it", "term", o.Term, "previous_token", n.token)
		n.leading, n.leaseUntil = false, time.Time{}
		n.stopLeading()
		n.viewDirty = true // renew now
	}
	if a.LeaderChanged != nil {
		n.notify()
	}
}

// checkLease starts leading when this node holds a certificate naming it
// and a lease the runtime renewed, and stops when the lease lapses or
// another leader takes over.
func (n *Node) checkLease(now time.Time) {
	// The freshest clock: the leadership context checks its lease end
	// against it, and now may be from before a long handler.
	if t := time.Now(); t.After(now) {
		now = t
	}
	leader, term := n.term.Leader()
	should := leader == n.cfg.Name && now.Before(n.leaseUntil)
	if should && n.leading && !n.lead.renew(n.leaseUntil) {
		// The lease ran out before this renewal was handled (the process
		// paused, or the loop ran late): that leadership's context has
		// ended for good, so a new one starts under the renewed lease.
		n.log.Warn("lease ran out before its renewal was handled; starting a new leadership", "term", term)
		n.leading = false
		n.stopLeading()
	}
	switch {
	case should && !n.leading:
		n.leading = true
		n.startLeading(term)
		n.notify()
	case !should && n.leading:
		n.leading = false
		if leader == n.cfg.Name {
			n.log.Warn("lease expired: the runtime did not renew it; stopping", "term", term)
		}
		n.stopLeading()
		n.notify()
	}
}

// IsLeaseRefusal reports whether err is the election function's refusal
// to renew the caller's lease: a failed run whose message is a refusal
// (package outcome) with code lease_not_renewed. The runtime withholds a
// function's message when the input was sealed; such a refusal looks like
// any other failed run.
func IsLeaseRefusal(err error) bool {
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeFunctionFailed {
		return false
	}
	r, perr := outcome.ParseRefusal(ae.Message)
	return perr == nil && r.Code == outcome.LeaseNotRenewed
}
