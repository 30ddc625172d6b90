package enclave_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/enclave"
	"github.com/vouch-dev/vouch/functions"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/internal/harness/testbuild"
)

// replicaEnv is one replica of a replicated runtime, served on a loopback
// port.
type replicaEnv struct {
	id, dir, root string
	url, raftAddr string
	rootFP        string
	srv           *enclave.Server
	cancel        context.CancelFunc
	done          chan struct{}
	stopped       bool
}

// listenRetry listens on addr, retrying while a closed listener's port
// lingers.
func listenRetry(t *testing.T, addr string) net.Listener {
	t.Helper()
	var err error
	for i := 0; i < 100; i++ {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("listen %s: %v", addr, err)
	return nil
}

func testLogger(t *testing.T, id string) *slog.Logger {
	if os.Getenv("VOUCH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("replica", id)
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// openReplica opens a replica; apiAddr and raftAddr are "127.0.0.1:0" for
// a new one, or the old addresses for a restart.
func openReplica(t *testing.T, id, dir, root, apiAddr, raftAddr string, bootstrap bool, join string) (*replicaEnv, error) {
	t.Helper()
	pcr0, err := attest.ExecutableDigest()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := attest.NewSimulated(root, pcr0)
	if err != nil {
		t.Fatal(err)
	}
	apiLn := listenRetry(t, apiAddr)
	raftLn := listenRetry(t, raftAddr)
	url := "http://" + apiLn.Addr().String()
	srv, err := enclave.Open(ctx, enclave.Config{DataDir: dir, Attester: sim, Logger: testLogger(t, id), RateLimit: -1,
		CacheDir: replicaCache(t),
		Replica: &enclave.ReplicaConfig{ID: id, RaftListener: raftLn, APIURL: url, Bootstrap: bootstrap, Join: join,
			SnapshotThreshold: 8, SnapshotInterval: 200 * time.Millisecond,
			Timing: enclave.ReplicaTiming{Heartbeat: time.Second, Election: time.Second, LeaderLease: 500 * time.Millisecond}}})
	if err != nil {
		apiLn.Close()
		raftLn.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	fp := sim.RootFingerprint()
	r := &replicaEnv{id: id, dir: dir, root: root, rootFP: hex.EncodeToString(fp[:]), url: url, raftAddr: raftLn.Addr().String(), srv: srv, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		srv.Serve(sctx, apiLn)
	}()
	t.Cleanup(r.stop)
	return r, nil
}

var replicaCacheDir string

func replicaCache(t *testing.T) string {
	if replicaCacheDir == "" {
		replicaCacheDir = t.TempDir()
	}
	return replicaCacheDir
}

// stop closes the replica as a killed process would lose it: its HTTP
// server, raft and everything in memory.
func (r *replicaEnv) stop() {
	if r.stopped {
		return
	}
	r.stopped = true
	r.cancel()
	<-r.done
	r.srv.Close(context.Background())
}

func (r *replicaEnv) restart(t *testing.T) *replicaEnv {
	t.Helper()
	r.stop()
	n, err := openReplica(t, r.id, r.dir, r.root, strings.TrimPrefix(r.url, "http://"), r.raftAddr, false, "")
	if err != nil {
		t.Fatalf("restarting %s: %v", r.id, err)
	}
	return n
}

func (r *replicaEnv) members(t *testing.T) api.ReplicaSet {
	t.Helper()
	var rs api.ReplicaSet
	resp, err := http.Get(r.url + "/v1/replicas")
	if err != nil {
		return rs
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&rs)
	return rs
}

func (r *replicaEnv) client(t *testing.T, owner string, opts client.Options) *client.Client {
	t.Helper()
	opts.OwnerToken = owner
	opts.Trust = api.Trust{Platform: attest.PlatformSimulated, AllowSimulated: true, RootFingerprint: r.rootFP, KeyID: r.srv.KeyID()}
	c, err := client.New(r.url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// eventually polls cond until it holds, for at most a generous bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaderOf waits until the live replicas agree on a serving leader and
// returns it.
func leaderOf(t *testing.T, rs ...*replicaEnv) *replicaEnv {
	t.Helper()
	var leader *replicaEnv
	eventually(t, "a leader serves", func() bool {
		for _, r := range rs {
			if r.stopped {
				continue
			}
			m := r.members(t)
			if m.State == "Leader" && m.Leader == r.id {
				// Serving only once caught up: a deploy-free probe.
				resp, err := http.Post(r.url+"/v1/tokens/revoke", "application/json", strings.NewReader("{}"))
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusUnauthorized {
						leader = r
						return true
					}
				}
			}
		}
		return false
	})
	return leader
}

func getStatus(t *testing.T, url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestReplicatedRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three replicas")
	}
	root := t.TempDir()
	r1, err := openReplica(t, "r1", t.TempDir(), root, "127.0.0.1:0", "127.0.0.1:0", true, "")
	if err != nil {
		t.Fatal(err)
	}
	owner, created := r1.srv.OwnerToken()
	if !created {
		t.Fatal("bootstrap did not create the owner credential")
	}
	leaderOf(t, r1)
	if got := getStatus(t, r1.url+"/v1/replicas"); got != http.StatusOK {
		t.Fatalf("GET /v1/replicas: %d", got)
	}
	r2, err := openReplica(t, "r2", t.TempDir(), root, "127.0.0.1:0", "127.0.0.1:0", false, r1.url)
	if err != nil {
		t.Fatal(err)
	}
	r3, err := openReplica(t, "r3", t.TempDir(), root, "127.0.0.1:0", "127.0.0.1:0", false, r1.url)
	if err != nil {
		t.Fatal(err)
	}
	all := []*replicaEnv{r1, r2, r3}
	eventually(t, "3 voters", func() bool {
		m := r1.members(t)
		voters := 0
		for _, s := range m.Replicas {
			if s.Suffrage == "Voter" && s.APIURL != "" {
				voters++
			}
		}
		return voters == 3
	})
	for _, r := range all[1:] {
		if r.srv.KeyID() != r1.srv.KeyID() {
			t.Fatalf("%s has key ID %s, %s has %s", r.id, r.srv.KeyID(), r1.id, r1.srv.KeyID())
		}
	}
	leader := leaderOf(t, all...)

	// A replica with another simulated root is refused, and changes
	// nothing.
	if _, err := openReplica(t, "r9", t.TempDir(), t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", false, leader.url); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("join under another root: %v, want a refusal", err)
	}
	if m := leader.members(t); len(m.Replicas) != 3 {
		t.Fatalf("after a refused join: %d members", len(m.Replicas))
	}

	// Deploy on the leader: visible on every replica.
	c := leader.client(t, owner, client.Options{})
	b, err := functions.Builtin("leader")
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Deploy(ctx, b, "")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.MintToken(ctx, d.FunctionID, d.FunctionChecksum, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ref := client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: tok.FunctionToken}
	for _, r := range all {
		eventually(t, r.id+" has the function", func() bool { return getStatus(t, r.url+"/v1/functions/"+d.FunctionID) == http.StatusOK })
	}

	// Stateful state, a revocation and a deletion before the failover.
	mod, err := testbuild.Wasm("./enclave/testdata/statefn", true)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := bundle.New(mod, []byte(`{"allow_plaintext_input":true,"limits":{"timeout":"2s"}}`))
	if err != nil {
		t.Fatal(err)
	}
	sd, err := c.Deploy(ctx, sb, "statefn")
	if err != nil {
		t.Fatal(err)
	}
	sref := client.FunctionRef{ID: sd.FunctionID, Checksum: sd.FunctionChecksum, Token: owner}
	pc := leader.client(t, owner, client.Options{Plaintext: true})
	for i := 1; i <= 3; i++ {
		if got := call(t, pc, sref, "incr"); got != fmt.Sprint(i) {
			t.Fatalf("incr %d: %s", i, got)
		}
	}
	call(t, pc, sref, "put:k=durable")
	revoked, err := c.MintToken(ctx, d.FunctionID, d.FunctionChecksum, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(ctx, revoked.FunctionToken); err != nil {
		t.Fatal(err)
	}
	gone, err := c.Deploy(ctx, b, "gone")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, gone.FunctionID); err != nil {
		t.Fatal(err)
	}

	var before uint64
	for range 5 {
		res, err := c.Run(ctx, ref, []byte(leaderInput))
		if err != nil {
			t.Fatal(err)
		}
		// One service key: the receipt verifies under every replica's key.
		for _, r := range all {
			if err := res.Receipt.Verify(r.srv.ReceiptKey()); err != nil {
				t.Fatalf("receipt under %s's key: %v", r.id, err)
			}
		}
		if res.Receipt.Seq <= before {
			t.Fatalf("seq %d after %d", res.Receipt.Seq, before)
		}
		before = res.Receipt.Seq
	}

	// A follower redirects runs to the leader.
	var follower *replicaEnv
	for _, r := range all {
		if r != leader {
			follower = r
			break
		}
	}
	resp := post(t, follower.url+"/v1/functions/"+ref.ID+"/run", ref.Token, map[string]string{"Content-Type": api.ContentTypePlain}, []byte(leaderInput))
	var er api.ErrorResponse
	json.NewDecoder(resp.Body).Decode(&er)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest || er.Error == nil || er.Error.Code != api.CodeNotLeader || er.Error.LeaderURL != leader.url {
		t.Fatalf("run on a follower: %d %+v, want 421 not_leader with %s", resp.StatusCode, er.Error, leader.url)
	}

	// Kill the leader: another takes over with everything committed.
	leader.stop()
	var rest []*replicaEnv
	for _, r := range all {
		if r != leader {
			rest = append(rest, r)
		}
	}
	next := leaderOf(t, rest...)
	c2 := next.client(t, owner, client.Options{})
	for range 5 {
		res, err := c2.Run(ctx, ref, []byte(leaderInput))
		if err != nil {
			t.Fatalf("run after failover: %v", err)
		}
		if res.Receipt.Seq <= before {
			t.Fatalf("seq %d after failover, not above %d issued before", res.Receipt.Seq, before)
		}
		before = res.Receipt.Seq
		if err := res.Receipt.Verify(r1.srv.ReceiptKey()); err != nil {
			t.Fatal(err)
		}
	}
	pc2 := next.client(t, owner, client.Options{Plaintext: true})
	if got := call(t, pc2, sref, "get:k"); got != "durable" {
		t.Fatalf("durable state after failover: %q", got)
	}
	if got := call(t, pc2, sref, "incr"); got != "4" {
		t.Fatalf("counter after failover: %s, want 4", got)
	}
	_, err = c2.Run(ctx, client.FunctionRef{ID: ref.ID, Checksum: ref.Checksum, Token: revoked.FunctionToken}, []byte(leaderInput))
	if ae := (*api.Error)(nil); !errors.As(err, &ae) || ae.Code != api.CodeForbidden {
		t.Fatalf("revoked token after failover: %v, want forbidden", err)
	}
	if got := getStatus(t, next.url+"/v1/functions/"+gone.FunctionID); got != http.StatusNotFound {
		t.Fatalf("deleted function after failover: %d", got)
	}

	// The old leader restarts from its data directory and catches up.
	late, err := c2.Deploy(ctx, b, "late")
	if err != nil {
		t.Fatal(err)
	}
	back := leader.restart(t)
	eventually(t, back.id+" catches up", func() bool { return getStatus(t, back.url+"/v1/functions/"+late.FunctionID) == http.StatusOK })
	if getStatus(t, back.url+"/v1/functions/"+gone.FunctionID) != http.StatusNotFound {
		t.Fatal("the restarted replica has the deleted function")
	}
}

func TestReplicasOfSingleRuntime(t *testing.T) {
	env := enclavetest.Start(t)
	resp, err := http.Get(env.URL + "/v1/replicas")
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, resp, http.StatusNotFound, api.CodeNoRoute)
}
