package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/internal/leaderexec"
	"github.com/vouch-dev/vouch/node"
)

// leadFlags are the flags that act on leadership: the command run while
// leading (--exec, vouch lock), the leader-change hook and the resignation
// hold (docs/ELECTION.md, "Acting on leadership from outside Go").
type leadFlags struct {
	lock        bool // vouch lock: the command is required, and its exit stops the node by default
	exec        *bool
	grace       *time.Duration
	onExit      *string
	hook        *string
	hookTimeout *time.Duration
	hold        *time.Duration
}

// Exit policies for a command that exits while its node leads.
const (
	exitResign  = "resign"
	exitRestart = "restart"
	exitStop    = "stop"
)

func (lf *leadFlags) register(fs *flag.FlagSet, lock bool) {
	lf.lock = lock
	if lock {
		lf.exec = new(bool)
		*lf.exec = true
	} else {
		lf.exec = fs.Bool("exec", false, "run the command after -- while this node leads (vouch node --exec -- CMD ARGS...)")
	}
	lf.grace = fs.Duration("exec-grace", leaderexec.DefaultGrace, "after the leadership ends, how long (a `DURATION`) the command has between SIGTERM and SIGKILL")
	def := exitResign
	if lock {
		def = exitStop
	}
	lf.onExit = fs.String("exec-exit", def, "the `POLICY` when the command exits while the node leads: resign (hand the leadership over), restart (run it again) or stop (leave the cluster)")
	lf.hook = fs.String("on-leader-change", "", "run this shell `COMMAND` (sh -c) on every leader change, with the verified certificate (JSON) on stdin and VOUCH_LEADER, VOUCH_SELF, VOUCH_SEQ or VOUCH_TERM in its environment; not waited for")
	lf.hookTimeout = fs.Duration("hook-timeout", 30*time.Second, "kill a --on-leader-change hook after this `DURATION`")
	lf.hold = fs.Duration("resign-hold", time.Minute, "how long (a `DURATION`) a member that resigned stays out of the election (signed views: until another leader is certified)")
}

// check validates the flags against the positional arguments.
func (lf *leadFlags) check(args []string) error {
	switch {
	case lf.lock && len(args) == 0:
		return cmdline.Usagef("lock needs a command: vouch lock -p PORT [flags] -- CMD ARGS...")
	case !*lf.exec && len(args) > 0:
		return cmdline.Usagef("node takes no arguments, got %q: to give several peers, separate them with commas (-n 5400,5401) or repeat -n (-n 5400 -n 5401); to run a command while leading, use --exec -- CMD ARGS...", strings.Join(args, " "))
	case *lf.exec && len(args) == 0:
		return cmdline.Usagef("--exec needs a command after --: vouch node --exec [flags] -- CMD ARGS...")
	}
	switch *lf.onExit {
	case exitResign, exitRestart, exitStop:
	default:
		return cmdline.Usagef("--exec-exit %q: want resign, restart or stop", *lf.onExit)
	}
	return nil
}

// leaderEnv is the environment of the command and the hooks.
func leaderEnv(cfg *node.Config, leader string, seq uint64) []string {
	unit := "VOUCH_SEQ"
	if cfg.ClusterConfig != nil {
		unit = "VOUCH_TERM"
	}
	return []string{"VOUCH_LEADER=" + leader, "VOUCH_NODE=" + cfg.Name, "VOUCH_CLUSTER=" + cfg.Cluster,
		unit + "=" + strconv.FormatUint(seq, 10), "VOUCH_SELF=" + strconv.FormatBool(leader == cfg.Name)}
}

// supervisor runs the command while the node leads.
type supervisor struct {
	lf   *leadFlags
	cfg  *node.Config
	args []string
	log  *slog.Logger
	node func() *node.Node // set once the node exists; leaderships start after that
	stop context.CancelFunc
	mu   sync.Mutex
	exit error // the command's exit when it stopped the node
}

// install makes cfg run the command while leading.
func (s *supervisor) install() { s.cfg.OnStartedLeading = s.lead }

// exitErr returns the command's exit error when it stopped the node.
func (s *supervisor) exitErr() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exit
}

// lead runs the command for one leadership and returns once it has
// exited: the node waits for that before it lets another node lead.
func (s *supervisor) lead(ctx context.Context, token uint64) {
	env := append(leaderEnv(s.cfg, s.cfg.Name, token), "VOUCH_FENCING_TOKEN="+strconv.FormatUint(token, 10))
	for {
		start := time.Now()
		s.log.Info("starting the leader command", "fencing_token", token, "cmd", s.args)
		res, err := leaderexec.Run(ctx, leaderexec.Command{Args: s.args, Env: env, Grace: *s.lf.grace,
			Signalled: func(at time.Time) {
				s.log.Info("leadership ended: leader command signalled (SIGTERM)", "fencing_token", token, "at", at.UTC().Format(time.RFC3339Nano), "why", context.Cause(ctx))
			}})
		switch {
		case errors.Is(err, leaderexec.ErrStart):
			s.log.Error("the leader command cannot start", "err", err)
			res.Exited, res.Err = true, err
		case err != nil:
			return // the leadership ended before it started
		}
		if !res.Exited {
			s.log.Info("leader command stopped", "fencing_token", token, "killed", res.Killed, "exit", exitText(res.Err))
			return
		}
		s.log.Warn("the leader command exited while this node leads", "exit", exitText(res.Err), "after", time.Since(start).Round(time.Millisecond), "then", *s.lf.onExit)
		switch *s.lf.onExit {
		case exitRestart:
			t := time.NewTimer(max(0, time.Second-time.Since(start))) // at most one start a second
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		case exitStop:
			s.mu.Lock()
			s.exit = res.Err
			if s.exit == nil {
				s.exit = errCommandDone
			}
			s.mu.Unlock()
			s.stop()
		default:
			// Resign waits for this callback to return: not from here.
			go func() {
				if err := s.node().Resign(context.Background()); err != nil && !errors.Is(err, node.ErrNotLeader) {
					s.log.Warn("could not resign after the leader command exited", "err", err)
				}
			}()
		}
		return
	}
}

// errCommandDone marks a clean exit of the command that stopped the node.
var errCommandDone = errors.New("the command exited with status 0")

func exitText(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

// hooks fires the leader-change hook on every change of leader.
func runHooks(ctx context.Context, n *node.Node, cfg *node.Config, lf *leadFlags, log *slog.Logger) *leaderexec.Hooks {
	h := &leaderexec.Hooks{Cmd: *lf.hook, Timeout: *lf.hookTimeout, Stdout: os.Stderr, Done: func(err error) {
		if err != nil {
			log.Warn("leader-change hook failed", "err", err)
		}
	}}
	ch := n.SubscribeContext(ctx)
	go func() {
		last := ""
		for l := range ch {
			if l.Leader == "" || l.Leader == last {
				continue
			}
			last = l.Leader
			st := n.Status()
			body, _ := json.Marshal(st.Certificate)
			h.Fire(append(body, '\n'), leaderEnv(cfg, l.Leader, l.Seq))
		}
	}()
	return h
}

// resignFlags is vouch node resign: it asks a node, through its HTTP
// endpoint, to hand its leadership over.
func resignFlags(fs *flag.FlagSet) runFunc {
	addr := fs.String("http", "", "the node's --http `HOST:PORT` (it must be reached from this host: loopback)")
	return func(ctx context.Context, u *cmdline.UI, _ []string) error {
		if *addr == "" {
			return cmdline.Usagef("node resign needs --http HOST:PORT, the node's --http address")
		}
		url := *addr
		if !strings.Contains(url, "://") {
			url = "http://" + url
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(url, "/")+"/resign", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		var ans struct {
			Node, Leader, Error string
			Resigned            bool
		}
		if json.Unmarshal(b, &ans) != nil {
			return fmt.Errorf("%s answered %s: %s", url, resp.Status, bytes.TrimSpace(b))
		}
		switch {
		case ans.Resigned:
			fmt.Fprintf(u.Out, "%s resigned: it stopped acting, and its peers certify a new leader\n", ans.Node)
			return nil
		case resp.StatusCode == http.StatusConflict:
			return cmdline.WithHint(fmt.Errorf("%s is not the leader (the leader is %q)", ans.Node, ans.Leader), "ask the leader's node; `vouch status --node URL` shows who leads")
		}
		return fmt.Errorf("%s: %s %s", url, resp.Status, ans.Error)
	}
}

// resignOnSignal resigns the leadership on SIGUSR1 (not on Windows).
func resignOnSignal(ctx context.Context, n *node.Node, log *slog.Logger) {
	onSignal(ctx, notifyResign, func() {
		log.Info("SIGUSR1: resigning the leadership")
		if err := n.Resign(ctx); err != nil {
			log.Warn("resign", "err", err)
		}
	})
}

// onSignal calls fn each time the signals notify registers arrive, until
// ctx ends; it does nothing where notify registers none.
func onSignal(ctx context.Context, notify func(chan os.Signal) bool, fn func()) {
	ch := make(chan os.Signal, 1)
	if !notify(ch) {
		return
	}
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				fn()
			}
		}
	}()
}
