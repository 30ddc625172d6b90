// Package replicas measures the replicated runtime with real `vouch
// enclave` processes: how long a signed-views cluster takes to act again
// after the raft leader replica is killed with SIGKILL (Failover), and
// what replication costs in throughput against a single runtime (Cost).
// The statistics are pure and tested; the runs happen only when invoked.
package replicas

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/internal/wasmbuild"
)

// BuildVouch builds the vouch binary into dir and returns its path.
func BuildVouch(dir string) (string, error) {
	root, err := wasmbuild.ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "vouch")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/vouch")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/vouch: %v\n%s", err, out)
	}
	return bin, nil
}

// ServiceOptions configure StartService.
type ServiceOptions struct {
	// Bin is the vouch binary.
	Bin string
	// Dir holds the replicas' data directories, logs and the shared
	// simulated root.
	Dir string
	// Replicas is the number of replica processes; 0 runs one plain
	// single runtime (no --replica-id).
	Replicas int
	// RaftTimeout is `vouch enclave --raft-timeout` (0: the default).
	RaftTimeout time.Duration
}

// Service is a running set of `vouch enclave` processes: one replicated
// service (SIMULATED attestation under one shared root, no rate limit),
// or one plain single runtime.
type Service struct {
	Trust api.Trust
	Owner string
	procs []*proc
	o     ServiceOptions
}

// proc is one `vouch enclave` process.
type proc struct {
	id, url, listen, raft, data string
	cmd                         *exec.Cmd
	done                        chan struct{}
}

// StartService starts the processes: the first bootstraps the service,
// the others join through it; it returns once every replica is a voter.
func StartService(ctx context.Context, o ServiceOptions) (_ *Service, err error) {
	s := &Service{o: o}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	root := filepath.Join(o.Dir, "simroot")
	sim, err := attest.NewSimulated(root, make([]byte, attest.SimulatedPCRLen))
	if err != nil {
		return nil, err
	}
	fp := sim.RootFingerprint()
	s.Trust = api.Trust{Platform: attest.PlatformSimulated, AllowSimulated: true, RootFingerprint: hex.EncodeToString(fp[:])}
	n := max(o.Replicas, 1)
	for i := range n {
		p := &proc{id: fmt.Sprintf("r%d", i+1), data: filepath.Join(o.Dir, fmt.Sprintf("r%d", i+1))}
		if p.listen, err = freeAddr(); err != nil {
			return nil, err
		}
		if o.Replicas > 0 {
			if p.raft, err = freeAddr(); err != nil {
				return nil, err
			}
		}
		p.url = "http://" + p.listen
		s.procs = append(s.procs, p)
		var extra []string
		switch {
		case o.Replicas > 0 && i == 0:
			extra = []string{"--bootstrap"}
		case o.Replicas > 0:
			extra = []string{"--join", s.procs[0].url}
		}
		if err := s.start(ctx, i, extra...); err != nil {
			return nil, err
		}
		if i == 0 {
			b, err := os.ReadFile(filepath.Join(p.data, "owner.token"))
			if err != nil {
				return nil, err
			}
			s.Owner = strings.TrimSpace(string(b))
		}
	}
	if o.Replicas > 0 {
		err := eventually(ctx, 60*time.Second, func() bool {
			rs, ok := ReplicaSetOf(ctx, s.procs[0].url)
			v := 0
			for _, m := range rs.Replicas {
				if m.Suffrage == "Voter" {
					v++
				}
			}
			return ok && v == n && rs.Leader != ""
		})
		if err != nil {
			return nil, fmt.Errorf("replicas: %d voters: %w", n, err)
		}
	}
	return s, nil
}

// URLs lists the processes' API URLs.
func (s *Service) URLs() []string {
	out := make([]string, len(s.procs))
	for i, p := range s.procs {
		out[i] = p.url
	}
	return out
}

// start starts process i with its fixed arguments plus extra, and waits
// until it answers /healthz.
func (s *Service) start(ctx context.Context, i int, extra ...string) error {
	p := s.procs[i]
	args := []string{"enclave", "--listen", p.listen, "--data", p.data, "--simulated-root", filepath.Join(s.o.Dir, "simroot"),
		"--rate-limit", "0", "--log-level", "warn",
		// Loopback: plain HTTP keeps the figures comparable with earlier runs.
		"--insecure-http"}
	if s.o.Replicas > 0 {
		args = append(args, "--replica-id", p.id, "--raft-listen", p.raft, "--advertise-url", p.url)
		if s.o.RaftTimeout > 0 {
			args = append(args, "--raft-timeout", s.o.RaftTimeout.String())
		}
	}
	args = append(args, extra...)
	logf, err := os.OpenFile(filepath.Join(s.o.Dir, p.id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.o.Bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "VOUCH_SIMULATED_ROOT=")
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(p.done) }()
	err = eventually(ctx, 30*time.Second, func() bool {
		select {
		case <-p.done:
			return true
		default:
		}
		resp, err := http.Get(p.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	select {
	case <-p.done:
		return fmt.Errorf("replicas: %s exited at start (log: %s)", p.id, filepath.Join(s.o.Dir, p.id+".log"))
	default:
	}
	return err
}

// Kill sends SIGKILL to process i and waits until it is gone.
func (s *Service) Kill(i int) {
	p := s.procs[i]
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// Restart starts the killed replica i again from its data directory (a
// simulated replica needs neither --bootstrap nor --join).
func (s *Service) Restart(ctx context.Context, i int) error { return s.start(ctx, i) }

// Close kills every process.
func (s *Service) Close() {
	for i := range s.procs {
		s.Kill(i)
	}
}

// Leader returns the index of the raft leader replica, as the live
// replicas see it, or -1.
func (s *Service) Leader(ctx context.Context) int {
	for _, p := range s.procs {
		if p.cmd == nil {
			continue
		}
		if rs, ok := ReplicaSetOf(ctx, p.url); ok && rs.Leader != "" {
			for i, q := range s.procs {
				if q.id == rs.Leader {
					return i
				}
			}
		}
	}
	return -1
}

// WaitHealthy waits until every replica is a voter, one leads, and each
// has applied the leader's commit index as it was when the wait began.
func (s *Service) WaitHealthy(ctx context.Context, within time.Duration) error {
	var target uint64
	return eventually(ctx, within, func() bool {
		li := s.Leader(ctx)
		if li < 0 {
			return false
		}
		lead, ok := ReplicaSetOf(ctx, s.procs[li].url)
		if !ok || lead.Self != lead.Leader {
			return false
		}
		target = max(target, lead.CommitIndex)
		voters := 0
		for _, m := range lead.Replicas {
			if m.Suffrage == "Voter" {
				voters++
			}
		}
		if voters != len(s.procs) {
			return false
		}
		for _, p := range s.procs {
			rs, ok := ReplicaSetOf(ctx, p.url)
			if !ok || rs.Leader != lead.Self || rs.AppliedIndex < target {
				return false
			}
		}
		return true
	})
}

// ReplicaSetOf reads GET /v1/replicas from one replica.
func ReplicaSetOf(ctx context.Context, url string) (api.ReplicaSet, bool) {
	var rs api.ReplicaSet
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/replicas", nil)
	if err != nil {
		return rs, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rs, false
	}
	defer resp.Body.Close()
	return rs, resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&rs) == nil
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// eventually polls cond every 20 ms until it holds, within the bound.
func eventually(ctx context.Context, within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

var errNoLeader = errors.New("replicas: no raft leader")
