package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/node"
)

// observerFlags are `vouch status`'s flags for reading the cluster
// without an HTTP endpoint: it joins the gossip as an observer
// (node.Config.Observer) through a seed node, with the function
// reference's runtime and gossip key, and verifies the certificate
// itself. The names are `vouch node`'s: --ref and -n.
type observerFlags struct {
	cf            clientFlags
	seeds         peerFlag
	bind          string
	advertise     string
	clusterName   string
	clusterConfig string
	gossipKey     string
	gossipKeyFile string
	insecure      bool
	profile       string
	logLevel      string
}

func (o *observerFlags) register(fs *flag.FlagSet) {
	o.cf.register(fs, true)
	fs.StringVar(&o.cf.ref, "cluster-ref", "", "the same as --ref `FILE` (default ./"+defaultRefFile+")")
	fs.Var(&o.seeds, "n", "join the cluster's gossip as an observer through this `PEER` (PORT or HOST:PORT, a node's -p or --bind address), with --ref's runtime and gossip key; repeat or separate with commas")
	fs.Var(&o.seeds, "seed", "the same as -n `PEER`")
	fs.StringVar(&o.bind, "bind", "", "with -n: the `HOST:PORT` the observer gossips on (default 127.0.0.1:0 when every seed is on loopback, else 0.0.0.0:0; port 0 picks a free one)")
	fs.StringVar(&o.advertise, "advertise", "", "with -n: the `HOST:PORT` nodes should use to reach the observer (behind NAT, or when --bind 0.0.0.0 finds no private address); needs a fixed --bind port")
	fs.StringVar(&o.clusterName, "cluster", "default", "with -n: the cluster's `NAME`, as given to vouch node --cluster")
	fs.StringVar(&o.clusterConfig, "cluster-config", "", "with -n: the signed cluster configuration `FILE` of a cluster with signed views, as given to vouch node")
	fs.StringVar(&o.gossipKey, "gossip-key", "", "with -n: the cluster's gossip `KEY` (env VOUCH_GOSSIP_KEY; default: the reference's gossip_key)")
	fs.StringVar(&o.gossipKeyFile, "gossip-key-file", "", "with -n: read the cluster's gossip keys from `FILE` (mode 0600)")
	fs.BoolVar(&o.insecure, "insecure-gossip", false, "with -n: gossip without a key, for a cluster that runs --insecure-gossip")
	fs.StringVar(&o.profile, "profile", "local", "with -n: the observer's timing `PROFILE`: local, lan or wan")
	fs.StringVar(&o.logLevel, "log-level", "error", "with -n: the observer's log `LEVEL` on stderr: debug, info, warn or error")
}

// observer is a running observer node.
type observer struct {
	n     *node.Node
	seeds []string
}

// startObserver builds the observer's configuration the way `vouch node`
// builds a node's, and starts it. It needs no function token: it only
// attests the runtime.
func (o *observerFlags) start(ctx context.Context, u *cmdline.UI) (*observer, error) {
	logger, err := newLogger(u, "text", o.logLevel)
	if err != nil {
		return nil, err
	}
	cfg, err := node.ConfigFor(o.profile)
	if err != nil {
		return nil, cmdline.Usagef("--profile: %v", err)
	}
	cfg.Observer, cfg.Logger, cfg.Cluster, cfg.Peers = true, logger, o.clusterName, o.seeds
	bind := o.bind
	if bind == "" {
		bind = "0.0.0.0:0"
		if seedsLoopback(o.seeds) {
			bind = "127.0.0.1:0"
		}
	}
	if cfg.BindAddr, cfg.BindPort, err = splitHostPort(bind); err != nil {
		return nil, cmdline.Usagef("--bind: %v", err)
	}
	if o.advertise != "" {
		if cfg.AdvertiseAddr, cfg.AdvertisePort, err = splitHostPort(o.advertise); err != nil {
			return nil, cmdline.Usagef("--advertise: %v", err)
		}
	}
	var id [4]byte
	rand.Read(id[:])
	cfg.Name = "observer-" + hex.EncodeToString(id[:])

	ref, err := o.cf.loadRef()
	if err != nil {
		return nil, err
	}
	if ref == nil {
		if ref, err = api.LoadRef(defaultRefFile); errors.Is(err, fs.ErrNotExist) {
			return nil, cmdline.WithHint(errors.New("status -n needs the cluster's function reference"),
				"pass --ref FILE, the reference the nodes run with (vouch token -o json wrote it); it names the runtime, the function and the gossip key")
		} else if err != nil {
			return nil, err
		}
	}
	if w := ref.FileWarning(); w != nil {
		u.Warnf("%v", w)
	}
	if _, err := nodeGossipKeys(cfg, o.gossipKey, o.gossipKeyFile, o.insecure, ref); err != nil {
		return nil, err
	}
	// The token is not needed: an observer never runs the function.
	fr := client.FunctionRef{ID: ref.FunctionID, Checksum: ref.FunctionChecksum}
	if fr.ID == "" || fr.Checksum == "" {
		return nil, fmt.Errorf("the function reference names no function (function_id and function_checksum)")
	}
	opts, err := o.cf.options(u, ref, false)
	if err != nil {
		return nil, err
	}
	opts.Logger = logger.With("component", "client")
	c, err := client.NewReplicas(o.cf.urls(ref), opts)
	if err != nil {
		return nil, err
	}
	cfg.Runtime = node.NewClientRuntime(c, fr)
	cfg.FunctionID, cfg.Checksum = fr.ID, fr.Checksum
	if o.clusterConfig != "" {
		raw, err := os.ReadFile(o.clusterConfig)
		if err != nil {
			return nil, err
		}
		if cfg.ClusterConfig, err = cluster.ParseSigned(raw); err != nil {
			return nil, fmt.Errorf("%s: %w", o.clusterConfig, err)
		}
		if cfg.ClusterConfig.Config.Cluster != cfg.Cluster && o.clusterName == "default" {
			cfg.Cluster = cfg.ClusterConfig.Config.Cluster
		}
	}
	n, err := node.New(*cfg)
	if err != nil {
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		return nil, err
	}
	return &observer{n: n, seeds: o.seeds}, nil
}

// seedsLoopback reports whether every seed's host is a loopback address.
func seedsLoopback(seeds []string) bool {
	for _, s := range seeds {
		host, _, err := net.SplitHostPort(s)
		if err != nil || !client.Loopback(host) {
			return false
		}
	}
	return true
}

// report is the observer's view as a one-node status report.
func (o *observer) report(ctx context.Context) *statusReport {
	r := nodeReport{Source: "observer", Seeds: o.seeds}
	v := o.n.ClusterView(ctx)
	r.View = v
	if len(v.Members) == 0 {
		r.Error = "joined no node yet through " + strings.Join(o.seeds, ", ")
	}
	if err := v.Verify(); err != nil {
		r.VerifyError = err.Error()
	} else {
		r.Verified = true
	}
	return &statusReport{Nodes: []nodeReport{r}}
}

// wait returns the observer's report once it has joined and verified a
// certificate, or at timeout with what it has.
func (o *observer) wait(ctx context.Context, timeout time.Duration) *statusReport {
	deadline := time.Now().Add(timeout)
	for {
		rep := o.report(ctx)
		if r := rep.Nodes[0]; (r.Error == "" && r.Verified) || !time.Now().Before(deadline) || ctx.Err() != nil {
			return rep
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// leave leaves the gossip gracefully: the nodes see the observer leave,
// not fail.
func (o *observer) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	o.n.Shutdown(ctx)
}
