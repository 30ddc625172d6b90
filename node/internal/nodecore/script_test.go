package nodecore_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/election/members"
	"github.com/vouch-dev/vouch/election/outcome"
	"github.com/vouch-dev/vouch/node/internal/nodecore"
	"github.com/vouch-dev/vouch/receipt"
)

// go test ./node/internal/nodecore -rewrite regenerates the expected
// output in testdata/*.txt; review the diff before committing it.
var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/*.txt")

// t0 is the scripts' origin: at=120ms means t0 + 120 ms.
var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// A script is a list of cases, each a command line, a line "----", and
// the expected output up to a blank line (datadriven style). Commands:
//
//	new [views] [observer] [self=ID] [stagger=D] [coalesce=D] [ping=D] [timeout=D] [refresh=D] [view=D] [lease=D] [wait=D] [hold=D] [seed=N]
//	start [at=T] [floor=N] [unattested] [floorcert]   attest (or not) and create the cores;
//	                                          floorcert: the last certificate signed is the persisted floor certificate
//	rollback seq=N terms=K                    the runtime's state is rolled back: its next seq is N, it forgets terms above K
//	presented at=T moved|fail                 the runtime's answer to a Present (moved: it moved past the proof)
//	members ID...                             memberlist's current members
//	view [at=T] [dead=ID [known]]             the membership changed
//	views [at=T] [n=K] [dead=ID,ID...]        K changes, then a departure of each ID, handled together (Steps)
//	tick at=T | sync at=T | goodbye from=ID at=T | lease-ended at=T
//	step-down at=T | resign at=T | peer-resigned from=ID at=T | leave at=T   a graceful handover, a leave
//	cert from=P at=T [seq=N] ID...            a peer's member-list certificate for these members
//	answer at=T [seq=N] ID...                 the runtime's certificate for a Call
//	term from=P|runtime at=T term=N leader=ID [sent=T]   a term certificate (signed views)
//	fail at=T [429 [retry-after=D]] [lease]   the call failed (lease: the runtime refused the renewal)
//	attested at=T [fail]                      the runtime's attestation, the answer to an Attest (observers)
//	rotate                                    the runtime signs with a new key from now on
//	watch-ping from=ID at=T sent=T ok|fail    a leader-watch ping's outcome
//	suspect-ping from=ID at=T ok|fail         a suspect ping's outcome
//
// A step prints its Ready: one line per effect (debug logs left out),
// then when the machine wants to wake, relative to t0.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in testdata: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

type scriptCase struct {
	pos      string
	cmd      string
	expected string
	actual   string
}

func parseScript(t *testing.T, path string) []*scriptCase {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var out []*scriptCase
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		c := &scriptCase{pos: fmt.Sprintf("%s:%d", path, i+1), cmd: l}
		if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != "----" {
			t.Fatalf("%s: want a line ---- after the command", c.pos)
		}
		i += 2
		var exp []string
		for ; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
			exp = append(exp, lines[i])
		}
		c.expected = strings.Join(exp, "\n")
		out = append(out, c)
	}
	return out
}

func runScript(t *testing.T, path string) {
	cases := parseScript(t, path)
	s := &script{t: t}
	for _, c := range cases {
		c.actual = strings.TrimRight(s.run(c), "\n")
		if !*rewrite && c.actual != c.expected {
			t.Errorf("%s: %s\nwant:\n%s\ngot:\n%s", c.pos, c.cmd, c.expected, c.actual)
		}
	}
	if *rewrite {
		// Comments before a case are kept by re-reading them.
		b, _ := os.ReadFile(path)
		lines := strings.Split(string(b), "\n")
		var buf strings.Builder
		k := 0
		for i := 0; i < len(lines); i++ {
			l := strings.TrimSpace(lines[i])
			if l == "" {
				continue
			}
			if strings.HasPrefix(l, "#") {
				buf.WriteString(lines[i] + "\n")
				continue
			}
			c := cases[k]
			k++
			buf.WriteString(c.cmd + "\n----\n")
			if c.actual != "" {
				buf.WriteString(c.actual + "\n")
			}
			buf.WriteString("\n")
			i += 2
			for i < len(lines) && strings.TrimSpace(lines[i]) != "" {
				i++
			}
		}
		if err := os.WriteFile(path, []byte(strings.TrimRight(buf.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// script is one script's state: the machine and a fake runtime.
type script struct {
	t     *testing.T
	m     *nodecore.Machine
	views bool
	key   ed25519.PrivateKey // the runtime's receipt key
	sc    *cluster.Signed
	seq   uint64                // the fake runtime's last receipt seq
	last  *election.Certificate // the last certificate it signed
	terms map[uint64][]byte     // one output per term, as the election function stores it
	now   time.Time
}

const (
	fnID        = "fn"
	clusterName = "demo"
)

var checksum = strings.Repeat("ab", 32)

// args splits a command's words into flags (k=v or bare) and positionals.
type args struct {
	kv   map[string]string
	bare map[string]bool
	pos  []string
}

func parseArgs(words []string) args {
	a := args{kv: map[string]string{}, bare: map[string]bool{}}
	for _, w := range words {
		if k, v, ok := strings.Cut(w, "="); ok {
			a.kv[k] = v
		} else if w == "ok" || w == "fail" || w == "views" || w == "known" || w == "unattested" || w == "429" || w == "lease" || w == "plaintext" || w == "raw" || w == "floorcert" || w == "moved" || w == "observer" {
			a.bare[w] = true
		} else {
			a.pos = append(a.pos, w)
		}
	}
	return a
}

func (s *script) dur(a args, k string, def time.Duration) time.Duration {
	v, ok := a.kv[k]
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		s.t.Fatalf("%s=%q: %v", k, v, err)
	}
	return d
}

func (s *script) at(a args) time.Time {
	if _, ok := a.kv["at"]; ok {
		s.now = t0.Add(s.dur(a, "at", 0))
	}
	return s.now
}

func (s *script) run(c *scriptCase) string {
	words := strings.Fields(c.cmd)
	a := parseArgs(words[1:])
	switch words[0] {
	case "new":
		s.newMachine(a)
		return ""
	case "start":
		var key ed25519.PublicKey
		var err error
		if a.bare["unattested"] {
			err = errors.New("attestation: connection refused")
		} else {
			key = s.key.Public().(ed25519.PublicKey)
		}
		floor, _ := strconv.ParseUint(a.kv["floor"], 10, 64)
		if a.bare["floorcert"] {
			s.m.SetFloorCert(s.last)
		}
		s.m.Start(key, err, floor, s.at(a))
		return ""
	case "rollback":
		n, _ := strconv.ParseUint(a.kv["seq"], 10, 64)
		k, _ := strconv.ParseUint(a.kv["terms"], 10, 64)
		s.seq = n - 1
		for t := range s.terms {
			if t > k {
				delete(s.terms, t)
			}
		}
		return ""
	case "members":
		s.m.SetMembers(a.pos)
		return ""
	case "rotate":
		s.key = ed25519.NewKeyFromSeed(append(make([]byte, 31), 9))
		return ""
	}
	in := nodecore.Input{Now: s.at(a), From: a.kv["from"]}
	if words[0] == "views" {
		k, _ := strconv.Atoi(a.kv["n"])
		ins := make([]nodecore.Input, k, k+4)
		for i := range ins {
			ins[i] = nodecore.Input{Kind: nodecore.View, Now: in.Now}
		}
		if d := a.kv["dead"]; d != "" {
			for _, id := range strings.Split(d, ",") {
				ins = append(ins, nodecore.Input{Kind: nodecore.View, Now: in.Now, From: id, How: "dead"})
			}
		}
		return s.format(s.m.Steps(ins))
	}
	switch words[0] {
	case "view":
		in.Kind = nodecore.View
		in.From, in.How, in.Known = a.kv["dead"], map[bool]string{true: "dead"}[a.kv["dead"] != ""], a.bare["known"]
	case "tick":
		in.Kind = nodecore.Tick
	case "sync":
		in.Kind = nodecore.Sync
	case "lease-ended":
		in.Kind = nodecore.LeaseEnded
	case "goodbye":
		in.Kind = nodecore.Goodbye
	case "step-down":
		in.Kind = nodecore.StepDown
	case "resign":
		in.Kind = nodecore.Resign
	case "peer-resigned":
		in.Kind = nodecore.PeerResigned
	case "leave":
		s.m.Leave()
		in.Kind = nodecore.Sync
	case "cert":
		if v, ok := a.kv["seq"]; ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			s.seq = n - 1
		}
		in.Kind, in.Cert = nodecore.Certificate, s.elect(a.pos)
	case "answer":
		if v, ok := a.kv["seq"]; ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			s.seq = n - 1
		}
		in.Kind, in.Cert, in.Key = nodecore.CallResult, s.elect(a.pos), s.key.Public().(ed25519.PublicKey)
	case "term":
		term, _ := strconv.ParseUint(a.kv["term"], 10, 64)
		cert := s.termCert(term, a.kv["leader"])
		if in.From == "runtime" {
			in.Kind, in.Cert, in.Key, in.From = nodecore.CallResult, cert, s.key.Public().(ed25519.PublicKey), ""
			in.SentAt = t0.Add(s.dur(a, "sent", in.Now.Sub(t0)))
		} else {
			in.Kind, in.Cert = nodecore.Certificate, cert
		}
	case "fail":
		in.Kind, in.Err = nodecore.CallResult, errors.New("connection refused")
		if a.bare["429"] {
			in.Err = &api.Error{Code: "rate_limited", Message: "too many runs", Status: http.StatusTooManyRequests, RetryAfter: s.dur(a, "retry-after", 0)}
		}
		if a.bare["lease"] {
			// The election function's lease refusal as the runtime answers
			// a sealed input (its code and fixed text), a plaintext one
			// (its code and detail), or, from a runtime that does not list
			// the code, a plaintext one ("raw": the function's message).
			detail := "leader is not alive by a majority of views"
			code := api.RefusalLeaseNotRenewed
			msg := "function refused its input (" + code + "): " + api.RefusalTexts[code] + "; details withheld: the input was sealed"
			switch {
			case a.bare["plaintext"]:
				msg = "function refused its input (" + code + "): " + detail
			case a.bare["raw"]:
				code, msg = "", outcome.Refuse(outcome.LeaseNotRenewed, "%s", detail).Error()
			}
			in.Err = &api.Error{Code: api.CodeFunctionFailed, Kind: "failed", Refusal: code, Message: msg, Status: http.StatusUnprocessableEntity}
		}
	case "attested":
		in.Kind, in.Key = nodecore.Attested, s.key.Public().(ed25519.PublicKey)
		if a.bare["fail"] {
			in.Key, in.Err = nil, errors.New("attestation: connection refused")
		}
	case "presented":
		in.Kind, in.Moved = nodecore.Presented, a.bare["moved"]
		if a.bare["fail"] {
			in.Err = errors.New("proof refused")
		}
	case "watch-ping", "suspect-ping":
		in.Kind = nodecore.WatchPing
		if words[0] == "suspect-ping" {
			in.Kind = nodecore.SuspectPing
		}
		in.SentAt = t0.Add(s.dur(a, "sent", in.Now.Sub(t0)))
		if a.bare["fail"] {
			in.Err = errors.New("no ack")
		}
	default:
		s.t.Fatalf("%s: unknown command %q", c.pos, words[0])
	}
	return s.format(s.m.Step(in))
}

func (s *script) newMachine(a args) {
	seed, _ := strconv.ParseUint(a.kv["seed"], 10, 64)
	self := a.kv["self"]
	if self == "" {
		self = "5001"
	}
	s.key = ed25519.NewKeyFromSeed(make([]byte, 32))
	s.seq, s.views, s.now, s.terms = 0, a.bare["views"], t0, map[uint64][]byte{}
	cfg := nodecore.Config{Self: self, Cluster: clusterName, FunctionID: fnID, Checksum: checksum,
		PendingFor: 3 * time.Second, RefreshInterval: s.dur(a, "refresh", 30*time.Second),
		CallStagger: s.dur(a, "stagger", 20*time.Millisecond), ChangeCoalesce: s.dur(a, "coalesce", 0), LeaderPingInterval: s.dur(a, "ping", 100*time.Millisecond),
		LeaderTimeout: s.dur(a, "timeout", 500*time.Millisecond), RetryMin: 100 * time.Millisecond, RetryMax: 5 * time.Second,
		ViewInterval: s.dur(a, "view", 250*time.Millisecond), LeaseMargin: 50 * time.Millisecond,
		FloorFile: "DATA/last_seq", FloorWait: s.dur(a, "wait", 0), Rand: rand.New(rand.NewPCG(seed, 7)),
		ResignHold: s.dur(a, "hold", 0), Observer: a.bare["observer"]}
	if s.views {
		owner := ed25519.NewKeyFromSeed(append(make([]byte, 31), 1))
		me := ed25519.NewKeyFromSeed(append(make([]byte, 31), 2))
		sc, err := cluster.Sign(cluster.Config{Cluster: clusterName, Version: 1, Owner: owner.Public().(ed25519.PublicKey), Policy: cluster.PolicyHighest,
			LeaseMillis: s.dur(a, "lease", 600*time.Millisecond).Milliseconds(), ViewTTLMillis: 1000,
			Members: []cluster.Member{{ID: self, Key: me.Public().(ed25519.PublicKey)}}}, owner)
		if err != nil {
			s.t.Fatal(err)
		}
		s.sc, cfg.ClusterConfig, cfg.Identity = sc, sc, me
	}
	s.m = nodecore.New(cfg)
}

// sign makes a certificate as the runtime does, with the next seq.
func (s *script) sign(output, input []byte) *election.Certificate {
	s.seq++
	in, out := sha256.Sum256(input), sha256.Sum256(output)
	c := &election.Certificate{Output: output, Receipt: receipt.Receipt{FunctionID: fnID, FunctionChecksum: checksum,
		InputSHA256: hex.EncodeToString(in[:]), OutputSHA256: hex.EncodeToString(out[:]), Seq: s.seq, Time: s.now.Add(time.Duration(s.seq) * time.Microsecond)}}
	if err := c.Receipt.Sign(s.key); err != nil {
		s.t.Fatal(err)
	}
	s.last = c
	return c
}

// elect certifies ids as the leader function does (the highest leads).
func (s *script) elect(ids []string) *election.Certificate {
	set, err := members.New(ids)
	if err != nil {
		s.t.Fatal(err)
	}
	out, _ := json.Marshal(election.Outcome{Cluster: clusterName, Leader: set.Highest(), Members: set.IDs(), MembersDigest: set.Digest()})
	return s.sign(out, election.Request(clusterName, set.IDs()))
}

// termCert is the election function's certificate for a term.
func (s *script) termCert(term uint64, leader string) *election.Certificate {
	if out, ok := s.terms[term]; ok {
		return s.sign(out, []byte("a view"))
	}
	out, _ := json.Marshal(election.TermOutcome{Cluster: clusterName, ConfigDigest: s.sc.Config.Digest(), Term: term, Leader: leader,
		MembersDigest: strings.Repeat("0", 64), IssuedAtMs: s.now.UnixMilli(), LeaseMs: s.sc.Config.LeaseMillis, Policy: cluster.PolicyHighest, Mode: "closed"})
	s.terms[term] = out
	return s.sign(out, []byte("a view"))
}

func rel(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return "+" + t.Sub(t0).String()
}

func (s *script) format(rd nodecore.Ready) string {
	var b strings.Builder
	for _, e := range rd.Effects {
		switch e.Kind {
		case nodecore.Log:
			if e.Level < slog.LevelInfo {
				continue
			}
			fmt.Fprintf(&b, "log %s %q", strings.ToLower(e.Level.String()), e.Msg)
			for i := 0; i+1 < len(e.Attrs); i += 2 {
				fmt.Fprintf(&b, " %v=%v", e.Attrs[i], e.Attrs[i+1])
			}
			b.WriteString("\n")
		case nodecore.Count:
			fmt.Fprintf(&b, "count %s", e.Metric)
			if e.Label != "" {
				fmt.Fprintf(&b, "{%s}", e.Label)
			}
			b.WriteString("\n")
		case nodecore.Gauge:
			v := strconv.FormatFloat(e.Value, 'f', -1, 64)
			if e.Metric == nodecore.MetricRuntimeOK || e.Metric == nodecore.MetricRuntimeFail {
				v = rel(time.UnixMilli(int64(e.Value * 1000)))
			}
			fmt.Fprintf(&b, "gauge %s %s\n", e.Metric, v)
		case nodecore.Accepted:
			fmt.Fprintf(&b, "accepted seq=%d from=%q\n", e.Cert.Seq(), e.Source)
		case nodecore.Persist:
			fmt.Fprintf(&b, "persist %d\n", e.Seq)
		case nodecore.Relay:
			fmt.Fprintf(&b, "relay seq=%d term=%d direct=%v\n", e.Cert.Seq(), e.Seq, e.Direct)
		case nodecore.Call:
			fmt.Fprintf(&b, "call %v\n", e.View)
		case nodecore.Submit:
			fmt.Fprintf(&b, "submit alive=%v sent=%s config=%v\n", e.View, rel(e.SentAt), strings.Contains(string(e.Body), `"config"`))
		case nodecore.StartLeading:
			fmt.Fprintf(&b, "start-leading token=%d until=%s\n", e.Token, rel(e.Until))
		case nodecore.StopLeading:
			b.WriteString("stop-leading\n")
		case nodecore.Renew:
			fmt.Fprintf(&b, "renew token=%d until=%s\n", e.Token, rel(e.Until))
		case nodecore.Ping, nodecore.Join, nodecore.Watch, nodecore.Unwatch, nodecore.Forget:
			fmt.Fprintf(&b, "%s %s\n", map[nodecore.EffectKind]string{nodecore.Ping: "ping", nodecore.Join: "join", nodecore.Watch: "watch", nodecore.Unwatch: "unwatch", nodecore.Forget: "forget"}[e.Kind], e.Member)
		case nodecore.Notify:
			b.WriteString("notify\n")
		case nodecore.Present:
			fmt.Fprintf(&b, "present seq=%d value=%d\n", e.Cert.Seq(), e.Seq)
		case nodecore.Announce:
			b.WriteString("announce\n")
		case nodecore.Attest:
			b.WriteString("attest\n")
		default:
			s.t.Fatalf("unknown effect %v", e.Kind)
		}
	}
	fmt.Fprintf(&b, "wake %s", rel(rd.Wake))
	return b.String()
}
