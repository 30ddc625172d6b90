package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/node"
)

// statusFlags is `vouch status`: the cluster as the nodes' GET /cluster
// shows it, with each certificate re-verified here; or, with --ref and
// -n, as an observer that joins the gossip sees it (status_observer.go).
func statusFlags(fs *flag.FlagSet) runFunc {
	var nodes nodeURLFlag
	fs.Var(&nodes, "node", "a node's HTTP `URL` (its --http address): http://HOST:PORT, HOST:PORT or PORT; repeat or separate with commas")
	watch := fs.Duration("watch", 0, "refresh every `INTERVAL` (e.g. 1s) until interrupted; 0 prints once")
	timeout := fs.Duration("timeout", 5*time.Second, "the longest `DURATION` to wait for each node's answer (with -n: for the observer's first verified certificate)")
	out := formatFlag(fs, "json prints {\"nodes\": [{\"url\", \"source\", \"error\", \"verified\", \"verify_error\", \"view\"}]} (one line per refresh with --watch; docs/API.md)", "text", "json")
	var of observerFlags
	of.register(fs)
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		switch {
		case len(nodes) > 0 && len(of.seeds) > 0:
			return cmdline.Usagef("give --node URL (a node's HTTP endpoint) or -n PEER (join the gossip as an observer), not both")
		case len(nodes) == 0 && len(of.seeds) == 0:
			return cmdline.Usagef("status needs a node: --node URL (the address given to vouch node --http), or --ref FILE -n PEER (join the gossip through a node's -p or --bind address, as an observer)")
		}
		if *watch < 0 {
			return cmdline.Usagef("--watch %s: the interval must be positive", *watch)
		}
		hc := &http.Client{Timeout: *timeout}
		fetch := func(ctx context.Context) *statusReport { return fetchStatus(ctx, hc, nodes) }
		if len(of.seeds) > 0 {
			obs, err := of.start(ctx, u)
			if err != nil {
				return err
			}
			defer obs.leave()
			first := true
			fetch = func(ctx context.Context) *statusReport {
				if first {
					first = false
					return obs.wait(ctx, *timeout)
				}
				return obs.report(ctx)
			}
		}
		for {
			rep := fetch(ctx)
			var err error
			if *out == "json" {
				err = json.NewEncoder(u.Out).Encode(rep)
			} else {
				if *watch > 0 {
					fmt.Fprint(u.Out, "\033[H\033[2J") // clear the terminal between refreshes
				}
				err = writeStatusText(u.Out, rep)
			}
			if err != nil {
				return err
			}
			if *watch == 0 {
				return rep.err()
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(*watch):
			}
		}
	}
}

// nodeURLFlag collects --node values as base URLs.
type nodeURLFlag []string

func (f *nodeURLFlag) String() string { return strings.Join(*f, ",") }

func (f *nodeURLFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, err := strconv.Atoi(s); err == nil {
			s = "127.0.0.1:" + s
		}
		if !strings.Contains(s, "://") {
			s = "http://" + s
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("node %q: want http://HOST:PORT, HOST:PORT or PORT", s)
		}
		*f = append(*f, strings.TrimRight(s, "/"))
	}
	return nil
}

// statusReport is `vouch status -o json`: one entry per --node, in order.
type statusReport struct {
	Nodes []nodeReport `json:"nodes"`
}

// nodeReport is one node's answer: its view, or the error that kept it
// from answering, and whether its certificate verified here. Source is
// "http" (URL's GET /cluster) or "observer" (an observer this command ran,
// joined through Seeds).
type nodeReport struct {
	URL         string            `json:"url,omitempty"`
	Source      string            `json:"source"`
	Seeds       []string          `json:"seeds,omitempty"`
	Error       string            `json:"error,omitempty"`
	Verified    bool              `json:"verified"`
	VerifyError string            `json:"verify_error,omitempty"`
	View        *node.ClusterView `json:"view,omitempty"`
}

func fetchStatus(ctx context.Context, hc *http.Client, urls []string) *statusReport {
	rep := &statusReport{Nodes: make([]nodeReport, len(urls))}
	var wg sync.WaitGroup
	for i, base := range urls {
		wg.Go(func() {
			r := nodeReport{URL: base, Source: "http"}
			v, err := node.FetchClusterView(ctx, hc, base)
			if err != nil {
				r.Error = err.Error()
			} else {
				r.View = v
				if err := v.Verify(); err != nil {
					r.VerifyError = err.Error()
				} else {
					r.Verified = true
				}
			}
			rep.Nodes[i] = r
		})
	}
	wg.Wait()
	return rep
}

// err fails a one-shot status when no node answered, or when a node holds
// a certificate that does not verify.
func (r *statusReport) err() error {
	answered := 0
	for _, n := range r.Nodes {
		if n.Source == "observer" {
			return n.observerErr()
		}
		if n.View == nil {
			continue
		}
		answered++
		if n.View.Certificate != nil && !n.Verified {
			return fmt.Errorf("%s: %s", n.URL, n.VerifyError)
		}
	}
	if answered == 0 {
		return cmdline.WithHint(errors.New("no node answered GET /cluster"), "give the address a node serves with vouch node --http HOST:PORT")
	}
	return nil
}

// observerErr fails a one-shot status whose observer joined no node or
// holds no certificate that verifies.
func (n *nodeReport) observerErr() error {
	switch {
	case n.Error != "":
		return cmdline.WithHint(errors.New(n.Error), "give a node's gossip address (its -p or --bind) with -n, the cluster's reference (its gossip key) with --ref, and its name with --cluster (or its --cluster-config); --timeout waits longer")
	case n.View.Certificate == nil && len(n.View.Rejections) > 0:
		var rej []string
		for reason, k := range n.View.Rejections {
			rej = append(rej, fmt.Sprintf("%s %d", reason, k))
		}
		slices.Sort(rej)
		return cmdline.WithHint(fmt.Errorf("the observer joined, but refused every certificate it received (%s)", strings.Join(rej, ", ")),
			"a cluster with signed views needs --cluster-config FILE; --ref must name the cluster's function and runtime")
	case n.View.Certificate == nil:
		return cmdline.WithHint(errors.New("the observer joined, but holds no certificate yet"), "--timeout waits longer")
	case !n.Verified:
		return errors.New(n.VerifyError)
	}
	return nil
}

// writeStatusText prints the first answering node's view of the cluster,
// then, when several nodes were asked, one line per node.
func writeStatusText(w io.Writer, rep *statusReport) error {
	var main *nodeReport
	for i := range rep.Nodes {
		if rep.Nodes[i].View != nil {
			main = &rep.Nodes[i]
			break
		}
	}
	b := &strings.Builder{}
	if main == nil {
		for _, n := range rep.Nodes {
			fmt.Fprintf(b, "%s: %s\n", n.URL, n.Error)
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	v := main.View
	unit := "seq"
	if v.Scheme == "term" {
		unit = "term"
	}
	if main.Source == "observer" {
		fmt.Fprintf(b, "cluster %s, as observer %s sees it (joined through %s)\n", v.Cluster, v.Node, strings.Join(main.Seeds, ", "))
		if main.Error != "" {
			fmt.Fprintf(b, "%s\n", main.Error)
		}
	} else {
		fmt.Fprintf(b, "cluster %s, as node %s sees it (%s)\n", v.Cluster, v.Node, main.URL)
	}
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	leader := v.Leader
	if leader == "" {
		leader = "none yet"
	}
	fmt.Fprintf(tw, "leader\t%s\t%s %d\n", leader, unit, v.Seq)
	if v.LeaseUntil != nil {
		left := v.LeaseUntil.Sub(v.Time)
		lease := fmt.Sprintf("%s left", left.Round(time.Millisecond))
		if left <= 0 {
			lease = "lapsed"
		}
		fmt.Fprintf(tw, "lease\t%s\tof %s\n", lease, time.Duration(v.LeaseMillis)*time.Millisecond)
	}
	if c := v.Certificate; c != nil {
		fmt.Fprintf(tw, "issued\t%s\t%s ago, from %s\n", c.IssuedAt.Format(time.RFC3339Nano), v.Time.Sub(c.IssuedAt).Round(time.Millisecond), c.From)
	}
	switch {
	case v.Certificate == nil:
		fmt.Fprintf(tw, "certificate\tnone held yet\n")
	case main.Verified:
		att := v.Runtime.Platform
		if v.Runtime.Simulated {
			att = "SIMULATED attestation, development only"
		}
		fmt.Fprintf(tw, "certificate\tVERIFIED\there, receipt key %.16s… (%s)\n", v.Runtime.KeyID, att)
	default:
		fmt.Fprintf(tw, "certificate\tNOT VERIFIED\t%s\n", strings.TrimPrefix(main.VerifyError, node.ErrNotVerified.Error()+": "))
	}
	var rej []string
	for reason, k := range v.Rejections {
		rej = append(rej, fmt.Sprintf("%s %d", reason, k))
	}
	slices.Sort(rej)
	if len(rej) > 0 {
		fmt.Fprintf(tw, "rejected\t%s\n", strings.Join(rej, ", "))
	}
	tw.Flush()
	fmt.Fprintln(b)
	tw = tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tADDRESS\tSTATE\tIN VIEW")
	for _, m := range v.Members {
		name := m.Name
		if m.Name == v.Leader {
			name += " *"
		}
		inView := "no"
		if m.InView {
			inView = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, m.Addr, m.State, inView)
	}
	tw.Flush()
	if len(rep.Nodes) > 1 {
		fmt.Fprintln(b)
		tw = tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "NODE\tURL\tLEADER\t%s\tCERTIFICATE\n", strings.ToUpper(unit))
		for _, n := range rep.Nodes {
			switch {
			case n.View == nil:
				fmt.Fprintf(tw, "?\t%s\t\t\tunreachable: %s\n", n.URL, n.Error)
			case n.Verified:
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\tVERIFIED\n", n.View.Node, n.URL, n.View.Leader, n.View.Seq)
			case n.View.Certificate == nil:
				fmt.Fprintf(tw, "%s\t%s\t\t\tnone held yet\n", n.View.Node, n.URL)
			default:
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\tNOT VERIFIED\n", n.View.Node, n.URL, n.View.Leader, n.View.Seq)
			}
		}
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	return err
}
