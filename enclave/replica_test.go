package enclave_test

import (
	"bytes"
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
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/enclave"
	"github.com/vouch-dev/vouch/functions"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/internal/harness/testbuild"
	"github.com/vouch-dev/vouch/internal/raftstore"
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
			Timing: enclave.ReplicaTiming{Heartbeat: 2 * time.Second, Election: 2 * time.Second, LeaderLease: time.Second}}})
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

// transient reports an error that a leader change explains: the caller
// should try again on whichever replica leads then.
func transient(err error) bool {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code == api.CodeNotLeader || ae.Code == api.CodeNoLeader || ae.Code == api.CodeUnavailable
	}
	var ne net.Error
	return errors.As(err, &ne) || strings.Contains(err.Error(), "unreachable")
}

// replicaCluster is a replicated runtime under test.
type replicaCluster struct {
	t       *testing.T
	owner   string
	members []*replicaEnv
	clients map[string]*client.Client
}

func (c *replicaCluster) live() []*replicaEnv {
	var out []*replicaEnv
	for _, r := range c.members {
		if !r.stopped {
			out = append(out, r)
		}
	}
	return out
}

// client returns a cached client of r (plaintext or sealed inputs).
func (c *replicaCluster) client(r *replicaEnv, plaintext bool) *client.Client {
	key := fmt.Sprint(r.url, plaintext)
	if cl, ok := c.clients[key]; ok {
		return cl
	}
	cl := r.client(c.t, c.owner, client.Options{Plaintext: plaintext})
	c.clients[key] = cl
	return cl
}

// onLeader runs op on the serving leader until it succeeds, moving to the
// new leader when a leader change interrupts it (raft may re-elect under
// load). op must be safe to repeat.
func (c *replicaCluster) onLeader(what string, op func(r *replicaEnv) error) *replicaEnv {
	c.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		r := leaderOf(c.t, c.live()...)
		err := op(r)
		if err == nil {
			return r
		}
		if !transient(err) || time.Now().After(deadline) {
			c.t.Fatalf("%s on %s: %v", what, r.id, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startCluster bootstraps r1 and joins r2 and r3 through it, and waits
// until the three are voters.
func startCluster(t *testing.T) (*replicaCluster, *replicaEnv) {
	t.Helper()
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
	r2, err := openReplica(t, "r2", t.TempDir(), root, "127.0.0.1:0", "127.0.0.1:0", false, r1.url)
	if err != nil {
		t.Fatal(err)
	}
	r3, err := openReplica(t, "r3", t.TempDir(), root, "127.0.0.1:0", "127.0.0.1:0", false, r1.url)
	if err != nil {
		t.Fatal(err)
	}
	cl := &replicaCluster{t: t, owner: owner, members: []*replicaEnv{r1, r2, r3}, clients: map[string]*client.Client{}}
	eventually(t, "3 voters", func() bool {
		m := leaderOf(t, cl.live()...).members(t)
		voters := 0
		for _, s := range m.Replicas {
			if s.Suffrage == "Voter" && s.APIURL != "" {
				voters++
			}
		}
		return voters == 3
	})
	return cl, r1
}

// The SDK, given every replica, follows not_leader redirects and fails
// over when the leader dies, with no help from the caller.
func TestReplicaClientFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three replicas")
	}
	cl, r1 := startCluster(t)
	b, err := functions.Builtin("leader")
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, r := range cl.members {
		urls = append(urls, r.url)
	}
	// The follower first: the client must follow the redirect.
	leader := leaderOf(t, cl.live()...)
	for i, u := range urls {
		if u == leader.url {
			urls[0], urls[i] = urls[i], urls[0]
			urls = append(urls[1:], urls[0])
			break
		}
	}
	c, err := client.NewReplicas(urls, client.Options{OwnerToken: cl.owner, FailoverTimeout: 60 * time.Second,
		Trust: api.Trust{Platform: attest.PlatformSimulated, AllowSimulated: true, RootFingerprint: r1.rootFP, KeyID: r1.srv.KeyID()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Generous: the deploy compiles the leader function, which takes over a
	// minute under -race on a loaded 2-core machine.
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	d, err := c.Deploy(rctx, b, "")
	if err != nil {
		t.Fatal(err)
	}
	ref := client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: cl.owner}
	res, err := c.Run(rctx, ref, []byte(leaderInput))
	if err != nil {
		t.Fatal(err)
	}
	before := res.Receipt.Seq
	leaderOf(t, cl.live()...).stop()
	// A run whose connection broke after it was sent is not sent again
	// (it may have run): that call fails, and the next starts on another
	// replica.
	for i := 0; ; i++ {
		if res, err = c.Run(rctx, ref, []byte(leaderInput)); err == nil {
			break
		}
		if i == 2 || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("run after the leader died: %v", err)
		}
		t.Logf("run after the leader died: %v; the next call moves on", err)
	}
	if res.Receipt.Seq <= before {
		t.Fatalf("seq %d after failover, not above %d", res.Receipt.Seq, before)
	}
}

func TestReplicatedRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three replicas")
	}
	cl, r1 := startCluster(t)
	owner := cl.owner
	for _, r := range cl.members[1:] {
		if r.srv.KeyID() != r1.srv.KeyID() {
			t.Fatalf("%s has key ID %s, %s has %s", r.id, r.srv.KeyID(), r1.id, r1.srv.KeyID())
		}
	}

	// Every replica attests the one service key and its own replica ID,
	// and says in /healthz what it is.
	for _, r := range cl.members {
		id, err := r.client(t, owner, client.Options{}).Attest(ctx)
		if err != nil {
			t.Fatalf("attesting %s: %v", r.id, err)
		}
		if id.ReplicaID != r.id || id.KeyID != r1.srv.KeyID() {
			t.Fatalf("%s attests replica %q and key %s", r.id, id.ReplicaID, id.KeyID)
		}
		resp, err := http.Get(r.url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(string(body), "ok ") || !strings.Contains(string(body), "replica="+r.id+" ") {
			t.Fatalf("healthz of %s: %s", r.id, body)
		}
	}

	// A replica with another simulated root is refused, and changes
	// nothing.
	leader := leaderOf(t, cl.live()...)
	if _, err := openReplica(t, "r9", t.TempDir(), t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", false, leader.url); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("join under another root: %v, want a refusal", err)
	}
	for _, r := range cl.live() {
		if m := r.members(t); len(m.Replicas) != 3 {
			t.Fatalf("after a refused join, %s lists %d members", r.id, len(m.Replicas))
		}
	}

	// Deploy on the leader: visible on every replica.
	b, err := functions.Builtin("leader")
	if err != nil {
		t.Fatal(err)
	}
	var d *api.Deployed
	cl.onLeader("deploy", func(r *replicaEnv) (err error) { d, err = cl.client(r, false).Deploy(ctx, b, ""); return err })
	var tok *api.TokenResponse
	cl.onLeader("mint", func(r *replicaEnv) (err error) {
		tok, err = cl.client(r, false).MintToken(ctx, d.FunctionID, d.FunctionChecksum, time.Hour)
		return err
	})
	ref := client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: tok.FunctionToken}
	for _, r := range cl.members {
		eventually(t, r.id+" has the function", func() bool { return getStatus(t, r.url+"/v1/functions/"+d.FunctionID) == http.StatusOK })
	}

	// Stateful state, a revocation and a deletion before the failover.
	mod, err := testbuild.Wasm("./enclave/testdata/statefn", true)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := bundle.New(mod, []byte(`{"allow_plaintext_input":true,"limits":{"timeout":"5s"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var sd *api.Deployed
	cl.onLeader("deploy statefn", func(r *replicaEnv) (err error) { sd, err = cl.client(r, false).Deploy(ctx, sb, "statefn"); return err })
	sref := client.FunctionRef{ID: sd.FunctionID, Checksum: sd.FunctionChecksum, Token: owner}
	// A retried increment may have committed before its answer was lost:
	// counters only grow.
	var count int
	incr := func() {
		t.Helper()
		cl.onLeader("incr", func(r *replicaEnv) error {
			res, err := cl.client(r, true).Run(ctx, sref, []byte("incr"))
			if err != nil {
				return err
			}
			n, _ := strconv.Atoi(string(res.Output))
			if n <= count {
				t.Fatalf("counter went from %d to %s", count, res.Output)
			}
			count = n
			return nil
		})
	}
	for range 3 {
		incr()
	}
	cl.onLeader("put", func(r *replicaEnv) error {
		_, err := cl.client(r, true).Run(ctx, sref, []byte("put:k=durable"))
		return err
	})
	var revoked *api.TokenResponse
	cl.onLeader("mint", func(r *replicaEnv) (err error) {
		revoked, err = cl.client(r, false).MintToken(ctx, d.FunctionID, d.FunctionChecksum, time.Hour)
		return err
	})
	cl.onLeader("revoke", func(r *replicaEnv) error { return cl.client(r, false).Revoke(ctx, revoked.FunctionToken) })
	var gone *api.Deployed
	cl.onLeader("deploy gone", func(r *replicaEnv) (err error) { gone, err = cl.client(r, false).Deploy(ctx, b, "gone"); return err })
	cl.onLeader("delete", func(r *replicaEnv) error {
		err := cl.client(r, false).Delete(ctx, gone.FunctionID)
		if ae := (*api.Error)(nil); errors.As(err, &ae) && ae.Code == api.CodeNotFound {
			return nil // a retry after the delete applied
		}
		return err
	})

	var before uint64
	for range 5 {
		cl.onLeader("run", func(r *replicaEnv) error {
			res, err := cl.client(r, false).Run(ctx, ref, []byte(leaderInput))
			if err != nil {
				return err
			}
			// One service key: the receipt verifies under every
			// replica's key.
			for _, m := range cl.members {
				if err := res.Receipt.Verify(m.srv.ReceiptKey()); err != nil {
					t.Fatalf("receipt under %s's key: %v", m.id, err)
				}
			}
			if res.Receipt.Seq <= before {
				t.Fatalf("seq %d after %d", res.Receipt.Seq, before)
			}
			before = res.Receipt.Seq
			return nil
		})
	}

	// A follower redirects runs to the leader.
	eventually(t, "a follower redirects to the leader", func() bool {
		leader := leaderOf(t, cl.live()...)
		for _, r := range cl.live() {
			if r == leader {
				continue
			}
			resp := post(t, r.url+"/v1/functions/"+ref.ID+"/run", ref.Token, map[string]string{"Content-Type": api.ContentTypePlain}, []byte(leaderInput))
			var er api.ErrorResponse
			json.NewDecoder(resp.Body).Decode(&er)
			resp.Body.Close()
			if resp.StatusCode != http.StatusMisdirectedRequest || er.Error == nil || er.Error.Code != api.CodeNotLeader || er.Error.LeaderURL != leader.url {
				t.Logf("run on follower %s: %d %+v, want 421 not_leader with %s", r.id, resp.StatusCode, er.Error, leader.url)
				return false
			}
		}
		return true
	})

	// Kill the leader: another takes over with everything committed.
	killed := leaderOf(t, cl.live()...)
	killed.stop()
	for range 5 {
		cl.onLeader("run after failover", func(r *replicaEnv) error {
			res, err := cl.client(r, false).Run(ctx, ref, []byte(leaderInput))
			if err != nil {
				return err
			}
			if res.Receipt.Seq <= before {
				t.Fatalf("seq %d after failover, not above %d issued before", res.Receipt.Seq, before)
			}
			before = res.Receipt.Seq
			return res.Receipt.Verify(r1.srv.ReceiptKey())
		})
	}
	cl.onLeader("get", func(r *replicaEnv) error {
		res, err := cl.client(r, true).Run(ctx, sref, []byte("get:k"))
		if err == nil && string(res.Output) != "durable" {
			t.Fatalf("durable state after failover: %q", res.Output)
		}
		return err
	})
	incr()
	cl.onLeader("run with a revoked token", func(r *replicaEnv) error {
		_, err := cl.client(r, false).Run(ctx, client.FunctionRef{ID: ref.ID, Checksum: ref.Checksum, Token: revoked.FunctionToken}, []byte(leaderInput))
		if ae := (*api.Error)(nil); errors.As(err, &ae) && ae.Code == api.CodeForbidden {
			return nil
		}
		if err == nil || !transient(err) {
			t.Fatalf("revoked token after failover: %v, want forbidden", err)
		}
		return err
	})
	// Only the leader says a function does not exist; a follower, which
	// may lag behind a deploy, sends the caller to the leader.
	for _, r := range cl.live() {
		got := getStatus(t, r.url+"/v1/functions/"+gone.FunctionID)
		if got != http.StatusNotFound && got != http.StatusMisdirectedRequest && got != http.StatusServiceUnavailable {
			t.Fatalf("deleted function on %s after failover: %d", r.id, got)
		}
	}
	cl.onLeader("deleted function", func(r *replicaEnv) error {
		if got := getStatus(t, r.url+"/v1/functions/"+gone.FunctionID); got != http.StatusNotFound {
			return fmt.Errorf("deleted function on the leader %s: %d", r.id, got)
		}
		return nil
	})

	// The killed replica restarts from its data directory and catches up.
	var late *api.Deployed
	cl.onLeader("deploy late", func(r *replicaEnv) (err error) { late, err = cl.client(r, false).Deploy(ctx, b, "late"); return err })
	back := killed.restart(t)
	cl.members = append(cl.members, back)
	eventually(t, back.id+" catches up", func() bool { return getStatus(t, back.url+"/v1/functions/"+late.FunctionID) == http.StatusOK })
	if got := getStatus(t, back.url+"/v1/functions/"+gone.FunctionID); got == http.StatusOK {
		t.Fatal("the restarted replica has the deleted function")
	}

	// A follower re-synced from nothing (its raft directory wiped, as
	// after tampering) joins again and catches up.
	var wiped *replicaEnv
	leader = leaderOf(t, cl.live()...)
	for _, r := range cl.live() {
		if r != leader {
			wiped = r
			break
		}
	}
	wiped.stop()
	if err := os.RemoveAll(filepath.Join(wiped.dir, "raft")); err != nil {
		t.Fatal(err)
	}
	resynced, err := openReplica(t, wiped.id, wiped.dir, wiped.root, strings.TrimPrefix(wiped.url, "http://"), wiped.raftAddr, false, leader.url)
	if err != nil {
		t.Fatalf("re-sync of %s: %v", wiped.id, err)
	}
	eventually(t, resynced.id+" catches up after a re-sync", func() bool {
		return getStatus(t, resynced.url+"/v1/functions/"+late.FunctionID) == http.StatusOK
	})
}

func TestReplicasOfSingleRuntime(t *testing.T) {
	env := enclavetest.Start(t)
	resp, err := http.Get(env.URL + "/v1/replicas")
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, resp, http.StatusNotFound, api.CodeNoRoute)
}

// A replica whose raft log was edited while it was stopped never serves
// from it: it refuses to open (or, if it opens, answers 503), and says why.
func TestTamperedReplicaStops(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a replica")
	}
	r, err := openReplica(t, "r1", t.TempDir(), t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", true, "")
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := r.srv.OwnerToken()
	b, err := functions.Builtin("leader")
	if err != nil {
		t.Fatal(err)
	}
	leaderOf(t, r)
	if _, err := r.client(t, owner, client.Options{}).Deploy(ctx, b, ""); err != nil {
		t.Fatal(err)
	}
	r.stop()
	db, err := bolt.Open(filepath.Join(r.dir, "raft", "raft.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		lb := tx.Bucket([]byte("logs"))
		k, v := lb.Cursor().Last()
		v = bytes.Clone(v)
		v[len(v)/2] ^= 1
		return lb.Put(k, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	back, err := openReplica(t, r.id, r.dir, r.root, strings.TrimPrefix(r.url, "http://"), r.raftAddr, false, "")
	if err != nil {
		if !errors.Is(err, raftstore.ErrTampered) {
			t.Fatalf("reopening a tampered replica: %v, want ErrTampered", err)
		}
		return
	}
	eventually(t, "the replica stops serving", func() bool {
		resp, err := http.Get(back.url + "/v1/identity")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var er api.ErrorResponse
		json.NewDecoder(resp.Body).Decode(&er)
		return resp.StatusCode == http.StatusServiceUnavailable && er.Error != nil && er.Error.Code == api.CodeUnavailable &&
			strings.Contains(er.Error.Message, "failed authentication")
	})
}
