package client

// How a Client uses the replicas of a replicated runtime (docs/API.md,
// "Replicas"):
//
//  1. It sends each call to its current replica, the first URL at the
//     start. A replica is attested, with a fresh nonce, before the first
//     input is sealed to it; each has its own boot and HPKE key, so inputs
//     are sealed per replica, but all must attest one receipt key: the
//     pinned Trust.KeyID, else the key of the first replica verified. A
//     replica with another key is refused (ErrPinnedKey) and skipped.
//  2. 421 not_leader with a leader_url: the call moves to that replica (added
//     to the known list if new, and attested before anything is sent to it)
//     at once; a few hops at most, then it counts as no_leader.
//  3. The replica is unreachable, answers 503 (no_leader, unavailable), or
//     fails attestation: the call moves to the next replica, round robin,
//     and after a whole round waits 50 ms, doubling up to 500 ms, until the
//     caller's context or Options.FailoverTimeout ends. The error then names
//     every replica and what each answered.
//  4. Only a request the runtime cannot have acted on is sent again: no
//     connection was made, or a replica refused it (not_leader, no_leader,
//     unavailable). Reads (GET) are sent again after any transport error.
//     A run or owner call whose connection broke after it was sent is not:
//     the call returns that error and the next call starts on the next
//     replica.
//
// A client that knows a single URL behaves as before: an unreachable
// runtime, a failed attestation, or 503 unavailable is returned at once.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/api"
)

// Failover pacing: the wait after each round of replicas that all failed.
const (
	minFailoverBackoff = 50 * time.Millisecond
	maxFailoverBackoff = 500 * time.Millisecond
	// maxLeaderHops bounds the not_leader redirects followed in a row.
	maxLeaderHops = 3
)

// attestError is a replica whose identity did not pass the trust policy.
type attestError struct{ err error }

func (e *attestError) Error() string { return e.err.Error() }
func (e *attestError) Unwrap() error { return e.err }

// ranError is an error about a run the runtime answered: it ran the input,
// so the call does not send it elsewhere.
type ranError struct{ err error }

func (e *ranError) Error() string { return e.err.Error() }
func (e *ranError) Unwrap() error { return e.err }

// dialFailed reports whether err says that no connection was made, so the
// request was not sent.
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// ReplicasError is returned when no replica could serve a call: it names
// each replica the client knows and the last error it gave.
type ReplicasError struct {
	URLs   []string
	Errors []error // Errors[i] is URLs[i]'s; nil if it was not tried
	// Cause is the context's error if the caller's context ended.
	Cause error
}

func (e *ReplicasError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "none of the runtime's %d replicas could serve the request", len(e.URLs))
	if e.Cause != nil {
		fmt.Fprintf(&b, " before %v", e.Cause)
	}
	for i, u := range e.URLs {
		if e.Errors[i] == nil {
			fmt.Fprintf(&b, "; %s: not tried", u)
		} else {
			fmt.Fprintf(&b, "; %s: %v", u, e.Errors[i])
		}
	}
	return b.String()
}

// Unwrap returns every replica's error and the context's.
func (e *ReplicasError) Unwrap() []error {
	var out []error
	for _, err := range e.Errors {
		if err != nil {
			out = append(out, err)
		}
	}
	if e.Cause != nil {
		out = append(out, e.Cause)
	}
	return out
}

// current returns the replica calls go to now.
func (c *Client) current() *replica {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replicas[c.cur]
}

// known returns how many replicas the client knows.
func (c *Client) known() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.replicas)
}

// advance moves from rep to the next replica, unless another call has
// already moved on, and logs why.
func (c *Client) advance(rep *replica, reason string, cause error) {
	c.mu.Lock()
	if c.replicas[c.cur] != rep || len(c.replicas) == 1 {
		c.mu.Unlock()
		return
	}
	c.cur = (c.cur + 1) % len(c.replicas)
	to := c.replicas[c.cur].url
	c.mu.Unlock()
	c.opts.Logger.Info("moving to another replica of the runtime", "from", rep.url, "to", to, "reason", reason, "error", cause.Error())
}

// redirect makes the replica at leaderURL current, adding it to the known
// replicas if it is new, and reports whether it could.
func (c *Client) redirect(from *replica, leaderURL string) bool {
	u, err := parseRuntimeURL(leaderURL)
	if err != nil || leaderURL == "" {
		return false
	}
	c.mu.Lock()
	i := 0
	for i < len(c.replicas) && c.replicas[i].url != u.String() {
		i++
	}
	if i == len(c.replicas) {
		if len(c.replicas) >= MaxKnownReplicas {
			c.mu.Unlock()
			return false
		}
		tr, err := c.newTransport(u)
		if err != nil {
			c.mu.Unlock()
			return false
		}
		c.replicas = append(c.replicas, &replica{base: u, url: u.String(), learned: true, tr: tr})
	}
	c.cur = i
	c.mu.Unlock()
	if from.url != u.String() {
		c.opts.Logger.Info("moving to another replica of the runtime", "from", from.url, "to", u.String(), "reason", "not_leader")
	}
	return true
}

// failure is what a call does after an error on one replica.
type failure int

const (
	failStop     failure = iota // return the error
	failMove                    // try the next replica
	failLeave                   // return the error, but move on for the next call
	failRedirect                // go to the leader named in the error
)

// classify decides what to do after err from rep. idempotent requests may
// be sent again even if the runtime may have seen them.
func (c *Client) classify(err error, idempotent, single bool) (failure, string) {
	var ae *api.Error
	var ue *unreachableError
	var te *attestError
	switch {
	case errors.As(err, new(*ranError)):
		return failStop, ""
	case errors.As(err, &te):
		if single {
			return failStop, ""
		}
		return failMove, "attestation refused"
	case errors.As(err, &ue):
		switch {
		case single:
			return failStop, ""
		case idempotent || !ue.sent:
			return failMove, "unreachable"
		}
		return failLeave, "unreachable"
	case errors.As(err, &ae):
		switch {
		case ae.Code == api.CodeNotLeader && ae.LeaderURL != "":
			return failRedirect, "not_leader"
		case ae.Code == api.CodeNotLeader, ae.Code == api.CodeNoLeader:
			return failMove, ae.Code
		case ae.Status == http.StatusServiceUnavailable && !single:
			return failMove, ae.Code
		}
	}
	return failStop, ""
}

// call runs op on the current replica and, while replicas cannot serve it,
// on others (see the top of this file), within ctx and FailoverTimeout.
func (c *Client) call(ctx context.Context, idempotent bool, op func(*replica) error) error {
	deadline := time.Now().Add(c.opts.FailoverTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	errs := map[*replica]error{}
	backoff := minFailoverBackoff
	tried, refused, hops := 0, 0, 0
	for {
		rep := c.current()
		err := c.prepare(ctx, rep)
		if err == nil {
			if err = op(rep); err == nil {
				return nil
			}
		}
		single := c.known() == 1
		what, reason := c.classify(err, idempotent, single)
		if what == failRedirect {
			var ae *api.Error
			errors.As(err, &ae)
			if hops < maxLeaderHops && c.redirect(rep, ae.LeaderURL) {
				hops++
				continue
			}
			what, reason = failMove, "not_leader"
		}
		switch what {
		case failStop:
			return err
		case failLeave:
			c.advance(rep, reason, err)
			return err
		}
		errs[rep] = err
		tried++
		if errors.As(err, new(*attestError)) {
			refused++
		}
		c.advance(rep, reason, err)
		if ctx.Err() != nil {
			return c.replicasError(errs, err, ctx.Err())
		}
		if tried < c.known() {
			continue
		}
		// Every replica failed this round: wait, then go round again,
		// unless every one was refused (that will not pass by waiting).
		if refused == tried || time.Now().Add(backoff).After(deadline) {
			return c.replicasError(errs, err, ctx.Err())
		}
		tried, refused, hops = 0, 0, 0
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return c.replicasError(errs, err, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, maxFailoverBackoff)
	}
}

// prepare attests rep first if the client learned it from a redirect, so
// that nothing, the owner credential included, goes to an unverified URL.
func (c *Client) prepare(ctx context.Context, rep *replica) error {
	if !rep.learned {
		return nil
	}
	_, err := c.identityOf(ctx, rep)
	return err
}

// replicasError describes a call that no replica could serve; with a
// single replica it is that replica's error, as before replication.
func (c *Client) replicasError(errs map[*replica]error, last, cause error) error {
	c.mu.Lock()
	reps := append([]*replica(nil), c.replicas...)
	c.mu.Unlock()
	if len(reps) == 1 {
		if cause != nil && !errors.Is(last, cause) {
			return fmt.Errorf("%w (%w)", last, cause)
		}
		return last
	}
	e := &ReplicasError{URLs: make([]string, len(reps)), Errors: make([]error, len(reps)), Cause: cause}
	for i, r := range reps {
		e.URLs[i], e.Errors[i] = r.url, errs[r]
	}
	return e
}

// ReplicaURLs asks the runtime which replicas it has (GET /v1/replicas) and
// returns their API URLs, the leader's first: what a reference's
// enclave_urls should list. It returns nil, and no error, for a runtime
// that is not replicated (it answers 404).
func (c *Client) ReplicaURLs(ctx context.Context) ([]string, error) {
	ctx, cancel := withTimeout(ctx, DefaultTimeout)
	defer cancel()
	var raw json.RawMessage
	err := c.call(ctx, true, func(rep *replica) error {
		return c.do(ctx, rep, http.MethodGet, "/v1/replicas", nil, "", c.opts.OwnerToken, &raw)
	})
	var ae *api.Error
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the runtime's replicas: %w", err)
	}
	return ParseReplicaList(raw)
}

// ParseReplicaList decodes the answer of GET /v1/replicas,
// {"replicas": [{"id": …, "api_url": …}, …], "leader": …}, and returns the
// replicas' API URLs, the leader's first (leader is its ID, or an object
// with an "id"). Other fields are ignored; a replica without an API URL is
// left out.
func ParseReplicaList(data []byte) ([]string, error) {
	var list struct {
		Replicas []struct {
			ID     string `json:"id"`
			APIURL string `json:"api_url"`
		} `json:"replicas"`
		Leader json.RawMessage `json:"leader"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("the runtime's replica list is malformed: %w", err)
	}
	if len(list.Replicas) > MaxKnownReplicas {
		return nil, fmt.Errorf("the runtime lists %d replicas; at most %d", len(list.Replicas), MaxKnownReplicas)
	}
	var leader string
	if json.Unmarshal(list.Leader, &leader) != nil {
		var obj struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(list.Leader, &obj) == nil {
			leader = obj.ID
		}
	}
	var urls []string
	seen := map[string]bool{}
	for _, r := range list.Replicas {
		if r.APIURL == "" {
			continue
		}
		u, err := parseRuntimeURL(r.APIURL)
		if err != nil {
			return nil, fmt.Errorf("the runtime's replica list: replica %q: %w", r.ID, err)
		}
		if seen[u.String()] {
			continue
		}
		seen[u.String()] = true
		if r.ID != "" && r.ID == leader {
			urls = append([]string{u.String()}, urls...)
		} else {
			urls = append(urls, u.String())
		}
	}
	return urls, nil
}
