package main

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/enclave"
	"github.com/vouch-dev/vouch/token"
)

// defaultDataDir is where `vouch enclave` keeps its state, and where the
// other commands look for the owner credential, when --data is not given.
const defaultDataDir = cmdline.DefaultDataDir

func enclaveFlags(fs *flag.FlagSet) runFunc {
	listen := fs.String("listen", "127.0.0.1:7070", "the `HOST:PORT` to serve the HTTPS API on, or vsock://PORT inside a Nitro enclave")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this certificate `FILE` (PEM, with --tls-key) instead of a key made at start; the attestation binds its key (default: a new key each start, bound in the attestation)")
	tlsKey := fs.String("tls-key", "", "the private key `FILE` (PEM) of --tls-cert")
	insecureHTTP := fs.Bool("insecure-http", false, "serve plain HTTP, not HTTPS: clients then refuse to send credentials unless the address is loopback (warned about when it is not)")
	data := fs.String("data", envOr("VOUCH_DATA", defaultDataDir), "the data `DIR`: store, keys, compilation cache (env VOUCH_DATA)")
	backend := fs.String("attestation", "simulated", "attestation `BACKEND`: simulated (development, clearly labelled) or nitro (inside an AWS Nitro Enclave, via /dev/nsm)")
	ownerFile := fs.String("owner-token-file", "", "read the owner credential from this `FILE` (mode 0600) instead of DATA/owner.token")
	maxBundle := fs.Int64("max-bundle-size", 64<<20, "largest bundle accepted by deploy, in `BYTES`")
	rateLimit := fs.Float64("rate-limit", 200, "`RUNS` per second allowed per function token (burst twice that); 0 disables the limit")
	logFormat := fs.String("log-format", "text", "log `FORMAT`: text or json")
	logLevel := fs.String("log-level", "info", "log `LEVEL`: debug, info, warn or error")
	replicaID := fs.String("replica-id", "", "run as replica `ID` of a replicated runtime (1-64 of a-z 0-9 . _ -); needs --raft-listen")
	raftListen := fs.String("raft-listen", "", "with --replica-id: the `HOST:PORT` raft traffic (TLS) is served on and other replicas dial")
	advertise := fs.String("advertise-url", "", "with --replica-id: this replica's API `URL` as clients and other replicas reach it (default https://LISTEN, or http:// with --insecure-http)")
	raftAdvertise := fs.String("raft-advertise", "", "with --replica-id: the raft `HOST:PORT` other replicas dial, when it is not --raft-listen's (a DNS name stays valid when the address changes; required when --raft-listen has no host)")
	allowPCRs := fs.String("join-allow-pcrs", "", "with --replica-id: a JSON `FILE` listing measurements a joining replica may have besides this replica's own, e.g. [{\"0\": \"HEX\", \"1\": \"HEX\", \"2\": \"HEX\"}] (for upgrades)")
	bootstrap := fs.Bool("bootstrap", false, "with --replica-id: create a new replicated service (first replica only)")
	joinURL := fs.String("join", "", "with --replica-id: join the service through the running replica at `URL`")
	raftTimeout := fs.Duration("raft-timeout", 0, "with --replica-id: raft's heartbeat and election `TIMEOUT` (leader lease half of it); 0 takes the default, 300ms")
	simRoot := fs.String("simulated-root", os.Getenv("VOUCH_SIMULATED_ROOT"), "with --attestation simulated: the `DIR` holding the simulated attestation root (default the data dir); replicas of one service on one machine share one (env VOUCH_SIMULATED_ROOT)")
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		logger, err := newLogger(u, *logFormat, *logLevel)
		if err != nil {
			return err
		}
		if *backend != "simulated" && *backend != "nitro" {
			return cmdline.Usagef("--attestation %q: want simulated or nitro", *backend)
		}
		if *replicaID == "" && (*raftListen != "" || *bootstrap || *joinURL != "" || *advertise != "" || *raftAdvertise != "" || *allowPCRs != "") {
			return cmdline.Usagef("--raft-listen, --raft-advertise, --advertise-url, --join-allow-pcrs, --bootstrap and --join need --replica-id")
		}
		if *replicaID != "" {
			if err := checkAdvertised(*raftListen, *raftAdvertise, *listen, *advertise); err != nil {
				return err
			}
		}
		if *replicaID != "" && *raftListen == "" {
			return cmdline.Usagef("--replica-id needs --raft-listen HOST:PORT")
		}
		if *raftTimeout < 0 || (*raftTimeout > 0 && *replicaID == "") {
			return cmdline.Usagef("--raft-timeout %v: want a positive duration, with --replica-id", *raftTimeout)
		}
		if *bootstrap && *joinURL != "" {
			return cmdline.Usagef("--bootstrap creates a new service and --join joins one: give one of them")
		}
		if (*tlsCert == "") != (*tlsKey == "") {
			return cmdline.Usagef("--tls-cert and --tls-key go together: give both, or neither for a key made at start")
		}
		if *insecureHTTP && *tlsCert != "" {
			return cmdline.Usagef("--insecure-http serves plain HTTP: leave out --tls-cert and --tls-key")
		}
		var cert *tls.Certificate
		switch {
		case *tlsCert != "":
			c, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
			if err != nil {
				return cmdline.WithHint(fmt.Errorf("--tls-cert %s, --tls-key %s: %w", *tlsCert, *tlsKey, err), "give a PEM certificate and the PEM private key of its public key")
			}
			cert = &c
		case !*insecureHTTP:
			if cert, err = enclave.GenerateTLSCertificate(); err != nil {
				return fmt.Errorf("making the TLS key: %w", err)
			}
		}
		scheme := "https://"
		if cert == nil {
			scheme = "http://"
		}
		// Listen before opening the data directory: a first start that cannot
		// listen must not create the owner credential it would never print.
		ln, err := listenAPI(*listen)
		if err != nil {
			return cmdline.WithHint(err, "is another runtime already listening there? choose another --listen address")
		}
		defer ln.Close()
		if err := os.MkdirAll(*data, 0o700); err != nil {
			return err
		}
		var att attest.Attester
		switch *backend {
		case "simulated":
			pcr0, err := attest.ExecutableDigest()
			if err != nil {
				return fmt.Errorf("measuring the vouch binary for PCR0: %w", err)
			}
			root := *data
			if *simRoot != "" {
				root = *simRoot
			}
			sim, err := attest.NewSimulated(root, pcr0)
			if err != nil {
				return err
			}
			att = sim
		case "nitro":
			n, err := attest.NewNitro()
			if err != nil {
				return cmdline.WithHint(err, "--attestation nitro works only inside an AWS Nitro Enclave; use --attestation simulated for development")
			}
			defer n.Close()
			att = n
		default:
			return cmdline.Usagef("--attestation %q: want simulated or nitro", *backend)
		}
		var owner string
		if *ownerFile != "" {
			if owner, err = token.LoadOwnerTokenFile(*ownerFile); err != nil {
				return err
			}
		}
		rl := *rateLimit
		if rl == 0 {
			rl = -1 // the flag's 0 means no limit; the library's 0 means the default
		}
		cfg := enclave.Config{DataDir: *data, Attester: att, OwnerToken: owner, Logger: logger, MaxBundleSize: *maxBundle, RateLimit: rl, TLSCertificate: cert}
		if *replicaID != "" {
			rln, err := net.Listen("tcp", *raftListen)
			if err != nil {
				return cmdline.WithHint(err, "choose another --raft-listen address")
			}
			apiURL := *advertise
			if apiURL == "" {
				apiURL = scheme + ln.Addr().String()
			}
			var pcrs []map[int][]byte
			if *allowPCRs != "" {
				if pcrs, err = readPCRAllowList(*allowPCRs); err != nil {
					rln.Close()
					return err
				}
			}
			// The server owns the raft listener from here on.
			cfg.Replica = &enclave.ReplicaConfig{ID: *replicaID, RaftListener: rln, Advertise: *raftAdvertise, APIURL: apiURL, Bootstrap: *bootstrap, Join: *joinURL, JoinAllowPCRs: pcrs,
				Timing: enclave.ReplicaTiming{Heartbeat: *raftTimeout, Election: *raftTimeout, LeaderLease: *raftTimeout / 2}}
		}
		srv, err := enclave.Open(ctx, cfg)
		if err != nil {
			return err
		}
		defer srv.Close(context.Background())
		if srv.Platform() == attest.PlatformSimulated {
			logger.Warn("attestation is SIMULATED: for development only; it proves nothing about the hardware", "pcr0", "sha256 of this vouch binary")
		}
		if tok, created := srv.OwnerToken(); created {
			file := filepath.Join(*data, "owner.token")
			if cfg.Replica != nil && srv.Platform() != attest.PlatformSimulated {
				file = "" // a real replica keeps the service keys in memory only
			}
			printOwnerCredential(u.Err, tok, file)
		}
		if cert == nil && !loopbackListen(*listen) {
			logger.Warn("serving plain HTTP (--insecure-http) on an address that is not loopback: the API is unencrypted; clients refuse to send the owner credential or function tokens to it", "listen", *listen)
		}
		ready := []any{"listen", scheme + ln.Addr().String(), "data", *data, "attestation", srv.Platform(),
			"receipt_key_id", srv.KeyID(), "boot_id", hex.EncodeToString(srv.BootID())}
		if cert != nil {
			// Clients pin this key through the attestation, which binds it.
			ready = append(ready, "tls_key_sha256", hex.EncodeToString(srv.TLSKeySHA256()))
		}
		logger.Info("runtime ready", ready...)
		return srv.Serve(ctx, ln)
	}
}

// printOwnerCredential shows a newly created owner credential, once, to
// whoever started the runtime: straight to stderr, framed so that it cannot
// be mistaken for a log line, and never through the logger, whose records
// may be collected and shipped elsewhere. It is never printed again: it
// stays in DATA/owner.token (mode 0600).
func printOwnerCredential(w io.Writer, tok, file string) {
	rule := strings.Repeat("=", 76)
	if file == "" {
		fmt.Fprintf(w, "\n%s\nvouch: OWNER CREDENTIAL of the new service (shown once; keep it secret)\n\n    %s\n\n"+
			"It authorises deploy, delete, list, minting function tokens and removing\n"+
			"replicas on every replica. The replicas keep it in memory only: store it\n"+
			"yourself and pass --owner-token-file FILE or set VOUCH_OWNER_TOKEN.\n%s\n\n", rule, tok, rule)
		return
	}
	fmt.Fprintf(w, "\n%s\nvouch: OWNER CREDENTIAL (shown once; keep it secret)\n\n    %s\n\n"+
		"It authorises deploy, delete, list and minting function tokens on this\n"+
		"runtime. It is stored in %s (mode 0600); the CLI finds it\n"+
		"there when run from this directory. Elsewhere pass --owner-token-file FILE\n"+
		"or set VOUCH_OWNER_TOKEN. Running a function never needs it: give callers\n"+
		"a function token (`vouch token`).\n%s\n\n", rule, tok, file, rule)
}

func newLogger(u *cmdline.UI, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, cmdline.Usagef("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(u.Err, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(u.Err, opts)), nil
	}
	return nil, cmdline.Usagef("--log-format %q: want text or json", format)
}

func envOr(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

// enclaveJoinFlags is `vouch enclave join URL`: exactly `vouch enclave
// --join URL`, with the same flags.
func enclaveJoinFlags(fs *flag.FlagSet) runFunc {
	run := enclaveFlags(fs)
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		joined := false
		fs.Visit(func(f *flag.Flag) { joined = joined || f.Name == "join" })
		if joined {
			return cmdline.Usagef("enclave join takes the URL as its argument: leave out --join")
		}
		if !strings.HasPrefix(pos[0], "http://") && !strings.HasPrefix(pos[0], "https://") {
			return cmdline.Usagef("enclave join %q: want the API URL of a running replica, such as https://127.0.0.1:7070", pos[0])
		}
		if err := fs.Set("join", pos[0]); err != nil {
			return err
		}
		return run(ctx, u, nil)
	}
}

// enclaveMembersFlags is `vouch enclave members`: GET /v1/replicas.
func enclaveMembersFlags(fs *flag.FlagSet) runFunc {
	var cf clientFlags
	cf.register(fs, false)
	out := formatFlag(fs, "json prints the answer of GET /v1/replicas", "text", "json")
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		opts, err := cf.options(u, nil, false)
		if err != nil {
			return err
		}
		c, err := client.NewReplicas(cf.urls(nil), opts)
		if err != nil {
			return err
		}
		defer c.Close()
		rs, err := c.Members(ctx)
		if ae := (*api.Error)(nil); errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return cmdline.WithHint(err, "this runtime is a single runtime; replicas start with `vouch enclave --replica-id ID --raft-listen HOST:PORT (--bootstrap | --join URL)`")
		}
		if err != nil {
			return err
		}
		if *out == "json" {
			return json.NewEncoder(u.Out).Encode(rs)
		}
		fmt.Fprintf(u.Out, "Leader ➜ %s\nAnswered by ➜ %s (%s, term %d, last index %d, commit index %d, applied index %d)\n\n",
			orNone(rs.Leader), rs.Self, rs.State, rs.Term, rs.LastIndex, rs.CommitIndex, rs.AppliedIndex)
		tw := tabwriter.NewWriter(u.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tAPI URL\tRAFT ADDRESS\tSUFFRAGE\tLEADER")
		for _, m := range rs.Replicas {
			lead := ""
			if m.Leader {
				lead = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.ID, orNone(m.APIURL), m.RaftAddr, m.Suffrage, lead)
		}
		return tw.Flush()
	}
}

// enclaveRemoveFlags is `vouch enclave remove ID`: DELETE /v1/replicas/{id}.
func enclaveRemoveFlags(fs *flag.FlagSet) runFunc {
	var cf clientFlags
	cf.register(fs, false)
	cf.registerOwner(fs)
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		if !api.ValidReplicaID(pos[0]) {
			return cmdline.Usagef("replica ID %q must be 1-64 characters of a-z 0-9 . _ -", pos[0])
		}
		opts, err := cf.options(u, nil, true)
		if err != nil {
			return err
		}
		c, err := client.NewReplicas(cf.urls(nil), opts)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.RemoveReplica(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(u.Out, "Removed replica %s\n", pos[0])
		return nil
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// checkAdvertised refuses addresses that other replicas could not dial: a
// listen address without a host (":7071", "0.0.0.0:7071") needs an
// advertised one.
func checkAdvertised(raftListen, raftAdvertise, listen, advertiseURL string) error {
	if raftAdvertise != "" {
		if h, p, err := net.SplitHostPort(raftAdvertise); err != nil || h == "" || p == "" || unspecified(h) {
			return cmdline.Usagef("--raft-advertise %q: want HOST:PORT with a host other replicas can dial", raftAdvertise)
		}
	} else if h, _, err := net.SplitHostPort(raftListen); err != nil {
		return cmdline.Usagef("--raft-listen %q: want HOST:PORT", raftListen)
	} else if unspecified(h) {
		return cmdline.Usagef("--raft-listen %q has no host other replicas can dial: give --raft-advertise HOST:PORT", raftListen)
	}
	if advertiseURL == "" {
		if h, _, err := net.SplitHostPort(listen); err == nil && unspecified(h) {
			return cmdline.Usagef("--listen %q has no host clients can reach: give --advertise-url URL", listen)
		}
	}
	return nil
}

// loopbackListen reports whether a --listen address is a loopback one
// (vsock is not: the host's proxy forwards it).
func loopbackListen(listen string) bool {
	h, _, err := net.SplitHostPort(listen)
	return err == nil && client.Loopback(h)
}

func unspecified(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// readPCRAllowList reads --join-allow-pcrs: a JSON list of objects mapping a
// PCR index to its hex value.
func readPCRAllowList(path string) ([]map[int][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) > 1<<20 {
		return nil, fmt.Errorf("--join-allow-pcrs %s: larger than 1 MiB", path)
	}
	var raw []map[string]string
	if err := api.UnmarshalStrict(b, &raw); err != nil {
		return nil, fmt.Errorf("--join-allow-pcrs %s: %w", path, err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("--join-allow-pcrs %s: the list is empty", path)
	}
	out := make([]map[int][]byte, 0, len(raw))
	for i, m := range raw {
		if len(m) == 0 {
			return nil, fmt.Errorf("--join-allow-pcrs %s: entry %d names no PCR", path, i)
		}
		e := map[int][]byte{}
		for k, v := range m {
			idx, ok := api.ParsePCRIndex(k)
			if !ok {
				return nil, fmt.Errorf("--join-allow-pcrs %s: entry %d: PCR index %q must be 0 to %d", path, i, k, attest.MaxPCRs-1)
			}
			val, ok := api.ParsePCRValue(v)
			if !ok {
				return nil, fmt.Errorf("--join-allow-pcrs %s: entry %d: PCR%d must be 32, 48 or 64 bytes of lowercase hex", path, i, idx)
			}
			e[idx] = val
		}
		out = append(out, e)
	}
	return out, nil
}
