package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/node"
	"github.com/vouch-dev/vouch/token"
)

// defaultRefFile is the original demo's file name for the function
// reference.
const defaultRefFile = "leader_election.json"

func nodeFlags(fl *flag.FlagSet) runFunc { return nodeCommand(fl, false) }

// lockFlags is vouch lock: a node that runs a command while it leads.
func lockFlags(fl *flag.FlagSet) runFunc { return nodeCommand(fl, true) }

func nodeCommand(fl *flag.FlagSet, lock bool) runFunc {
	var lf leadFlags
	lf.register(fl, lock)
	port := fl.Int("p", 0, "the `PORT` to gossip on (UDP and TCP, on 127.0.0.1 unless --bind); also the node's ID unless --name")
	var peers peerFlag
	fl.Var(&peers, "n", "a `PEER` to join: PORT (127.0.0.1:PORT) or HOST:PORT; repeat or separate with commas")
	fid := fl.String("f", "", "the election function's `ID`")
	fh := fl.String("fh", "", "the election function's expected `CHECKSUM`")
	var cf clientFlags
	cf.register(fl, true)
	var meta metaFlag
	fl.Var(&meta, "meta", "gossip `PAIR` (KEY=VALUE) as this node's metadata, shown in every member's /status and /cluster (e.g. a leader's service address); repeat for more, at most 512 bytes in all")
	name := fl.String("name", "", "this node's member `ID` (default: the port)")
	clusterName := fl.String("cluster", "default", "the cluster's `NAME`; nodes of other clusters are ignored")
	bind := fl.String("bind", "", "the `HOST:PORT` to listen on (default 127.0.0.1:-p)")
	advertise := fl.String("advertise", "", "the `HOST:PORT` peers should use to reach this node (behind NAT)")
	data := fl.String("data", "", "the `DIR` for the node's state (the last accepted seq, so old certificates cannot be replayed after a restart)")
	gossipKey := fl.String("gossip-key", "", "the cluster's gossip `KEY`, base64 of 16, 24 or 32 bytes; more after commas are accepted too, for a rotation (env VOUCH_GOSSIP_KEY; default: the reference's gossip_key; other local users can see flags, so prefer the reference or --gossip-key-file)")
	gossipKeyFile := fl.String("gossip-key-file", "", "read the cluster's gossip keys from `FILE` (mode 0600): base64, one a line, the first encrypts, the others are accepted too")
	insecureGossip := fl.Bool("insecure-gossip", false, "gossip without a key, unauthenticated: anyone who can reach the gossip port can evict members (tests and trusted networks only)")
	profile := fl.String("profile", "local", "timing `PROFILE`: local (leader failure detected in ~0.5 s), lan (~2.5 s) or wan (~10 s); see docs/ELECTION.md, section 6")
	httpAddr := fl.String("http", "", "serve GET /status, /cluster, /metrics and the dashboard (/) on this `HOST:PORT`, e.g. 127.0.0.1:8080")
	logFormat := fl.String("log-format", "text", "log `FORMAT`: text or json")
	logLevel := fl.String("log-level", "info", "log `LEVEL`: debug, info, warn or error")
	eventLog := fl.String("event-log", "", "append a JSON line per accepted certificate and leader action to this `FILE`")
	clusterConfig := fl.String("cluster-config", "", "the signed cluster configuration `FILE` (vouch cluster init writes it): switches to signed views and terms with the built-in election function")
	return func(ctx context.Context, u *cmdline.UI, args []string) error {
		if err := lf.check(args); err != nil {
			return err
		}
		ctx, stopNode := context.WithCancel(ctx)
		defer stopNode()
		tuneNodeGC()
		logger, err := newLogger(u, *logFormat, *logLevel)
		if err != nil {
			return err
		}
		cfg, err := node.ConfigFor(*profile)
		if err != nil {
			return cmdline.Usagef("--profile: %v", err)
		}
		cfg.Logger, cfg.Cluster, cfg.DataDir = logger, *clusterName, *data

		// Where to listen, and who we are.
		switch {
		case *bind != "":
			host, p, err := splitHostPort(*bind)
			if err != nil {
				return cmdline.Usagef("--bind: %v", err)
			}
			cfg.BindAddr, cfg.BindPort = host, p
		case *port != 0:
			cfg.BindAddr, cfg.BindPort = "127.0.0.1", *port
		default:
			return cmdline.Usagef("node needs -p PORT or --bind HOST:PORT")
		}
		if *advertise != "" {
			host, p, err := splitHostPort(*advertise)
			if err != nil {
				return cmdline.Usagef("--advertise: %v", err)
			}
			cfg.AdvertiseAddr, cfg.AdvertisePort = host, p
		}
		cfg.Name = *name
		if cfg.Name == "" {
			cfg.Name = strconv.Itoa(cfg.BindPort)
		}
		cfg.Peers = peers
		if _, err := node.EncodeMeta(meta); err != nil {
			return cmdline.Usagef("--meta: %v", err)
		}
		cfg.Meta = meta

		// The function reference: --ref, $VOUCH_REF, else ./leader_election.json.
		ref, err := cf.loadRef()
		if err != nil {
			return err
		}
		if ref == nil {
			if r, err := api.LoadRef(defaultRefFile); err == nil {
				ref = r
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		keySource, err := nodeGossipKeys(cfg, *gossipKey, *gossipKeyFile, *insecureGossip, ref)
		if err != nil {
			return err
		}
		fr := client.FunctionRef{ID: *fid, Checksum: strings.ToLower(*fh)}
		if ref != nil {
			if fr.ID == "" {
				fr.ID = ref.FunctionID
			}
			if fr.Checksum == "" {
				fr.Checksum = ref.FunctionChecksum
			}
			if fr.ID != ref.FunctionID || fr.Checksum != ref.FunctionChecksum {
				return cmdline.WithHint(fmt.Errorf("the function reference is for %s (checksum %s), but -f/-fh say %s (checksum %s)", ref.FunctionID, ref.FunctionChecksum, fr.ID, fr.Checksum),
					"mint a reference for the function you expect: vouch token <ID> --function-checksum <SUM> -o json > "+defaultRefFile)
			}
			fr.Token = ref.FunctionToken
		}
		if fr.ID == "" || fr.Checksum == "" {
			return cmdline.WithHint(errors.New("no election function: give -f ID -fh CHECKSUM"), "deploy it with `vouch deploy --builtin leader` and mint a reference with `vouch token <ID> --function-checksum <SUM> -o json > "+defaultRefFile+"`")
		}
		opts, err := cf.options(u, ref, false)
		if err != nil {
			return err
		}
		if fr.Token == "" {
			return cmdline.WithHint(errors.New("no function token"), "pass --ref FILE from `vouch token <ID> --function-checksum <SUM> -o json`, or put it in ./"+defaultRefFile)
		}
		if err := checkTokenFresh(fr.Token, time.Now()); err != nil {
			return err
		}
		opts.Logger = logger.With("component", "client") // moves between replicas, key changes
		c, err := client.NewReplicas(cf.urls(ref), opts)
		if err != nil {
			return err
		}
		rt := node.NewClientRuntime(c, fr)
		cfg.Runtime = rt
		cfg.FunctionID, cfg.Checksum = fr.ID, fr.Checksum
		if *clusterConfig != "" {
			raw, err := os.ReadFile(*clusterConfig)
			if err != nil {
				return err
			}
			if cfg.ClusterConfig, err = cluster.ParseSigned(raw); err != nil {
				return fmt.Errorf("%s: %w", *clusterConfig, err)
			}
			if cfg.ClusterConfig.Config.Cluster != cfg.Cluster && *clusterName == "default" {
				cfg.Cluster = cfg.ClusterConfig.Config.Cluster
			}
			if *data == "" {
				return cmdline.WithHint(errors.New("signed views need the node's identity key"), "pass --data DIR (the key is created there at first start; `vouch node id --data DIR` prints it)")
			}
			key, created, err := node.LoadIdentity(*data)
			if err != nil {
				return err
			}
			if created {
				logger.Info("created the node's identity key", "file", filepath.Join(*data, node.IdentityFile))
			}
			cfg.Identity = key
			if cfg.ClusterConfig.Config.Open {
				logger.Warn("cluster is OPEN: members register on first contact (trust on first use); for demos")
			} else if m := cfg.ClusterConfig.Config.Member(cfg.Name); m == nil || !ed25519.PublicKey(m.Key).Equal(key.Public()) {
				return cmdline.WithHint(fmt.Errorf("%q with this node's key is not a member of cluster %s", cfg.Name, cfg.ClusterConfig.Config.Cluster),
					"add it: vouch cluster add-member --id %s --node-data %s", cfg.Name, *data)
			}
		}
		if *eventLog != "" {
			f, err := os.OpenFile(*eventLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			defer f.Close()
			cfg.EventLog = f
		}
		// The process's own metrics (go_goroutines, process_resident_memory_bytes,
		// …) next to the node's: one node per process here.
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Registerer = reg
		cfg.ResignHold = *lf.hold
		var n *node.Node
		var sup *supervisor
		if *lf.exec || lock {
			sup = &supervisor{lf: &lf, cfg: cfg, args: args, log: logger, node: func() *node.Node { return n }, stop: stopNode}
			sup.install()
		}
		n, err = node.New(*cfg)
		if err != nil {
			return err
		}
		if err := n.Start(ctx); err != nil {
			if errors.Is(err, node.ErrStateFile) {
				return cmdline.WithHint(err, "the node refuses to start without its replay floor; restore the file, or, if it is lost, delete it deliberately: the node then accepts any certificate newer than what its peers hold")
			}
			return err
		}
		if keySource != "" {
			logger.Info("gossip is encrypted and authenticated", "key_from", keySource, "extra_keys", len(cfg.GossipExtraKeys))
		}
		if info := cfg.Runtime.Describe(); info.Simulated {
			logger.Warn("the runtime's attestation is SIMULATED: development only", "runtime", info.URL)
		}
		reloadOnSignal(ctx, newReloader(ctx, cf.refPath(), ref, fr.Token, rt, logger, reg))
		resignOnSignal(ctx, n, logger)
		if *lf.hook != "" {
			defer runHooks(ctx, n, cfg, &lf, logger).Wait()
		}
		if *httpAddr != "" {
			ln, err := net.Listen("tcp", *httpAddr)
			if err != nil {
				n.Kill()
				return err
			}
			srv := &http.Server{Handler: n.Handler(), ReadHeaderTimeout: 5 * time.Second}
			go srv.Serve(ln)
			defer srv.Close()
			logger.Info("status endpoints ready", "url", "http://"+ln.Addr().String()+"/status", "dashboard", "http://"+ln.Addr().String()+"/")
		}
		<-ctx.Done()
		logger.Info("leaving the cluster")
		// A leader stops acting (its command exits, within the grace)
		// before it leaves.
		wait := 3 * time.Second
		if sup != nil {
			wait += *lf.grace
		}
		sctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := n.Shutdown(sctx); errors.Is(err, node.ErrLeaveTimeout) {
			// Peers stopping at the same moment cannot all confirm each
			// other's leave; the node has stopped cleanly all the same.
			logger.Warn("left without confirmation", "err", err)
		} else if err != nil {
			return err
		}
		if err := sup.exitErr(); err != nil && !errors.Is(err, errCommandDone) {
			return fmt.Errorf("the leader command exited: %w", err)
		}
		return nil
	}
}

// peerFlag collects -n values: bare ports mean 127.0.0.1.
type peerFlag []string

func (p *peerFlag) String() string { return strings.Join(*p, ",") }

func (p *peerFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, err := strconv.Atoi(s); err == nil {
			s = "127.0.0.1:" + s
		} else if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("peer %q: want PORT or HOST:PORT", s)
		}
		*p = append(*p, s)
	}
	return nil
}

func splitHostPort(s string) (string, int, error) {
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("bad port %q", ps)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, p, nil
}

// warnTokenExpiry says when the node's function token expires: at start,
// an hour before, and when it has (the runtime then refuses every call, and
// elections stall). It reads the token's exp claim without verifying the
// token: only the runtime decides whether it is valid.
func warnTokenExpiry(ctx context.Context, logger *slog.Logger, tok string, now func() time.Time) {
	c, err := token.Parse(tok)
	if err != nil {
		return
	}
	hint := newTokenHint
	left := c.ExpiresAt.Sub(now())
	switch {
	case left <= 0:
		logger.Error("the function token has expired: the runtime will refuse this node's calls", "expired_at", c.ExpiresAt.UTC(), "hint", hint)
		return
	case left < time.Hour:
		logger.Warn("the function token expires within the hour: then the runtime refuses this node's calls", "expires_at", c.ExpiresAt.UTC(), "in", left.Round(time.Second), "hint", hint)
	default:
		logger.Info("function token valid", "expires_at", c.ExpiresAt.UTC(), "in", left.Round(time.Minute))
	}
	for _, at := range []time.Time{c.ExpiresAt.Add(-time.Hour), c.ExpiresAt} {
		d := at.Sub(now())
		if d <= 0 {
			continue
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if at.Equal(c.ExpiresAt) {
			logger.Error("the function token has expired: the runtime will refuse this node's calls", "expired_at", c.ExpiresAt.UTC(), "hint", hint)
		} else {
			logger.Warn("the function token expires in an hour: then the runtime refuses this node's calls", "expires_at", c.ExpiresAt.UTC(), "hint", hint)
		}
	}
}
