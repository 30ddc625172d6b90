package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/internal/harness/datadir"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/receipt"
)

// replicaPair starts two runtimes over copies of one data directory: the
// same service keys, simulated root and deployed function, each with its
// own boot and store, as two replicas of one service look to a client. If
// newKey names a key file, the second runtime makes its own key instead
// (another service, under the same root).
func replicaPair(t *testing.T, newKey string) (a, b *enclavetest.Env, ref client.FunctionRef) {
	t.Helper()
	// No rate limit: the concurrent failover test runs faster than the
	// default 200 runs per second per token without -race.
	a = enclavetest.Start(t, enclavetest.WithRateLimit(-1))
	ref = deployTiny(t, a)
	a.Stop()
	dir := t.TempDir()
	if err := datadir.Copy(dir, a.Dir); err != nil {
		t.Fatal(err)
	}
	if newKey != "" {
		if err := os.Remove(filepath.Join(dir, newKey)); err != nil {
			t.Fatal(err)
		}
	}
	a = a.Restart()
	b = enclavetest.StartIn(t, dir, "127.0.0.1:0", enclavetest.WithRateLimit(-1))
	return a, b, ref
}

// quietLogger returns a logger writing to buf.
func quietLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, nil))
}

// The current replica goes away: the next run moves to the other replica,
// attests it, seals the input for its boot and returns a receipt under the
// same service key.
func TestReplicaFailover(t *testing.T) {
	a, b, ref := replicaPair(t, "")
	key := a.Server.ReceiptKey()
	var logs syncBuffer
	c, err := client.NewReplicas([]string{a.URL, b.URL}, client.Options{Trust: a.Trust(), Logger: quietLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	res, err := c.Run(ctx, ref, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Replica() != a.URL || res.Receipt.Verify(key) != nil {
		t.Fatalf("first run on %s; want %s with a receipt under the service key", c.Replica(), a.URL)
	}
	a.Stop()
	res, err = c.Run(ctx, ref, []byte("y"))
	if errors.Is(err, client.ErrUnreachable) && c.Replica() == b.URL {
		// The run went out on a kept-alive connection that the stopping
		// replica closed: it may have run there, so the client does not
		// send it again (at most once per call), but it has moved on.
		t.Logf("first run after the stop: %v", err)
		res, err = c.Run(ctx, ref, []byte("y"))
	}
	if err != nil {
		t.Fatalf("run after the first replica stopped: %v", err)
	}
	if c.Replica() != b.URL {
		t.Errorf("current replica %s, want %s", c.Replica(), b.URL)
	}
	if err := res.Receipt.Verify(key); err != nil {
		t.Errorf("receipt from the second replica: %v", err)
	}
	if !bytes.Equal(c.Cached().BootID, b.Server.BootID()) {
		t.Errorf("client's boot ID %x is not the second replica's %x", c.Cached().BootID, b.Server.BootID())
	}
	if !strings.Contains(logs.String(), "moving to another replica") || !strings.Contains(logs.String(), "to="+b.URL) {
		t.Errorf("no log line about the move:\n%s", logs.String())
	}
	if c.URL() != a.URL {
		t.Errorf("URL() = %s, want the first URL %s", c.URL(), a.URL)
	}

	// Without a kept-alive connection, the first replica refuses the
	// connection: nothing was sent, so the same call goes on to the next.
	c2, err := client.NewReplicas([]string{a.URL, b.URL}, client.Options{Trust: a.Trust(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if res, err = c2.Run(ctx, ref, []byte("z")); err != nil || res.Receipt.Verify(key) != nil || c2.Replica() != b.URL {
		t.Fatalf("run with the first replica down: %v (on %s)", err, c2.Replica())
	}
}

// A replica that attests another receipt key is not a replica of the
// service: it is refused with ErrPinnedKey, and skipped when another
// replica can serve.
func TestReplicaOtherServiceKey(t *testing.T) {
	a, other, ref := replicaPair(t, "receipt_ed25519.pem")
	ctx := context.Background()

	t.Run("pinned by the first replica", func(t *testing.T) {
		sw := newSwitcher(t, a.URL)
		c, err := client.NewReplicas([]string{sw.url, other.URL}, client.Options{Trust: a.Trust(), Logger: slog.New(slog.DiscardHandler), FailoverTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Run(ctx, ref, []byte("x")); err != nil {
			t.Fatal(err)
		}
		// The first replica has no leader now; the only other one attests
		// another key.
		sw.set(modeNoLeader, "")
		_, err = c.Run(ctx, ref, []byte("x"))
		if !errors.Is(err, client.ErrPinnedKey) || !errors.As(err, new(*client.ReplicasError)) {
			t.Fatalf("run with only another service's replica serving: %v; want a ReplicasError wrapping ErrPinnedKey", err)
		}
		for _, want := range []string{sw.url, other.URL, "not a replica of the same service", "no leader"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	})

	t.Run("skipped under a pinned key", func(t *testing.T) {
		trust := a.Trust()
		trust.KeyID = receipt.KeyID(a.Server.ReceiptKey())
		c, err := client.NewReplicas([]string{other.URL, a.URL}, client.Options{Trust: trust, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		res, err := c.Run(ctx, ref, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Replica() != a.URL || res.Receipt.Verify(a.Server.ReceiptKey()) != nil {
			t.Errorf("ran on %s, want %s under the pinned key", c.Replica(), a.URL)
		}
	})

	t.Run("redirected to another service", func(t *testing.T) {
		sw := newSwitcher(t, a.URL)
		c, err := client.New(sw.url, client.Options{Trust: a.Trust(), Logger: slog.New(slog.DiscardHandler), FailoverTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Identity(ctx); err != nil {
			t.Fatal(err)
		}
		sw.set(modeNotLeader, other.URL)
		_, err = c.Run(ctx, ref, []byte("x"))
		if !errors.Is(err, client.ErrPinnedKey) {
			t.Fatalf("run redirected to another service: %v; want ErrPinnedKey", err)
		}
		if sw.runs() != 0 {
			t.Errorf("%d runs reached the runtime", sw.runs())
		}
	})
}

// The switcher's modes for the requests only a leader serves.
const (
	modeProxy     = iota // forward
	modeNotLeader        // 421 not_leader with leader_url
	modeNoLeader         // 503 no_leader
)

// switcher stands in for a replica's leadership, which is not under test
// here: it forwards reads to a real runtime and, per its mode, forwards or
// refuses what only a leader serves (runs, deploys, deletes, tokens).
type switcher struct {
	url string

	mu       sync.Mutex
	mode     int
	leader   string
	refusals int // requests refused with not_leader or no_leader
	left     int // refusals left before forwarding again; < 0: no limit
	forwards int // leader-only requests forwarded
}

func newSwitcher(t *testing.T, target string) *switcher {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	s := &switcher{left: -1}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			rp.ServeHTTP(w, r)
			return
		}
		s.mu.Lock()
		mode, leader := s.mode, s.leader
		if mode != modeProxy && s.left == 0 {
			mode = modeProxy
		}
		if mode == modeProxy {
			s.forwards++
		} else {
			s.refusals++
			if s.left > 0 {
				s.left--
			}
		}
		s.mu.Unlock()
		switch mode {
		case modeNotLeader:
			writeAPIError(w, &api.Error{Status: http.StatusMisdirectedRequest, Code: api.CodeNotLeader, Message: "this replica is not the leader", LeaderURL: leader})
		case modeNoLeader:
			w.Header().Set("Retry-After", "1")
			writeAPIError(w, &api.Error{Status: http.StatusServiceUnavailable, Code: api.CodeNoLeader, Message: "the replicas have no leader"})
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// set changes the mode; leader is the leader_url of modeNotLeader.
func (s *switcher) set(mode int, leader string) {
	s.mu.Lock()
	s.mode, s.leader, s.left = mode, leader, -1
	s.mu.Unlock()
}

// refuseNext refuses the next n leader-only requests with mode, then
// forwards again.
func (s *switcher) refuseNext(mode, n int) {
	s.mu.Lock()
	s.mode, s.left = mode, n
	s.mu.Unlock()
}

// runs returns how many leader-only requests were forwarded.
func (s *switcher) runs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forwards
}

// refused returns how many leader-only requests were refused.
func (s *switcher) refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusals
}

func writeAPIError(w http.ResponseWriter, e *api.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(api.ErrorResponse{Error: e})
}

// deadURL returns the URL of a loopback port where nothing listens.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

// A follower answers not_leader with the leader's URL: runs and owner
// calls follow it, attest the leader, and stay there.
func TestNotLeaderRedirect(t *testing.T) {
	env := enclavetest.Start(t)
	ref := deployTiny(t, env)
	follower := newSwitcher(t, env.URL)
	follower.set(modeNotLeader, env.URL)
	var logs syncBuffer
	c, err := client.New(follower.url, client.Options{Trust: env.Trust(), Logger: quietLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	res, err := c.Run(ctx, ref, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Receipt.Verify(env.Server.ReceiptKey()); err != nil {
		t.Fatal(err)
	}
	if c.Replica() != env.URL {
		t.Errorf("current replica %s, want the leader %s", c.Replica(), env.URL)
	}
	if got := c.URLs(); len(got) != 2 || got[0] != follower.url || got[1] != env.URL {
		t.Errorf("URLs() = %v, want the follower then the leader", got)
	}
	if follower.refused() != 1 || follower.runs() != 0 {
		t.Errorf("follower refused %d and forwarded %d runs; want 1 and 0", follower.refused(), follower.runs())
	}
	if !strings.Contains(logs.String(), "reason=not_leader") {
		t.Errorf("no log line about the redirect:\n%s", logs.String())
	}

	// Owner calls follow not_leader too.
	owner, err := client.New(follower.url, client.Options{Trust: env.Trust(), OwnerToken: env.Owner, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	tok, err := owner.MintToken(ctx, ref.ID, ref.Checksum, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.Revoke(ctx, tok.FunctionToken); err != nil {
		t.Fatal(err)
	}
	if follower.runs() != 0 || owner.Replica() != env.URL {
		t.Errorf("owner calls: %d forwarded by the follower, current %s", follower.runs(), owner.Replica())
	}

	// A not_leader that points back at itself is followed a few times,
	// then the call ends with a clear error.
	loop := newSwitcher(t, env.URL)
	c2, err := client.New(loop.url, client.Options{Trust: env.Trust(), Logger: slog.New(slog.DiscardHandler), FailoverTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	loop.set(modeNotLeader, loop.url)
	if _, err := c2.Run(ctx, ref, []byte("x")); err == nil || !strings.Contains(err.Error(), "not the leader") {
		t.Errorf("run against a replica that names itself the leader: %v", err)
	}
}

// While the replicas have no leader, a run waits and tries again within its
// context; once a leader appears it goes through. With another replica
// serving, the run moves there.
func TestNoLeader(t *testing.T) {
	env := enclavetest.Start(t)
	ref := deployTiny(t, env)
	ctx := context.Background()

	t.Run("then a leader", func(t *testing.T) {
		sw := newSwitcher(t, env.URL)
		c, err := client.New(sw.url, client.Options{Trust: env.Trust(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sw.refuseNext(modeNoLeader, 3)
		res, err := c.Run(ctx, ref, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Receipt.Verify(env.Server.ReceiptKey()) != nil || sw.refused() != 3 || sw.runs() != 1 {
			t.Errorf("refused %d, forwarded %d; want 3 refusals then 1 run with a good receipt", sw.refused(), sw.runs())
		}
	})

	t.Run("another replica", func(t *testing.T) {
		s1, s2 := newSwitcher(t, env.URL), newSwitcher(t, env.URL)
		s1.set(modeNoLeader, "")
		c, err := client.NewReplicas([]string{s1.url, s2.url}, client.Options{Trust: env.Trust(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Run(ctx, ref, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if c.Replica() != s2.url || s1.refused() != 1 || s2.runs() != 1 {
			t.Errorf("current %s; refused %d, forwarded %d", c.Replica(), s1.refused(), s2.runs())
		}
	})

	t.Run("never", func(t *testing.T) {
		sw := newSwitcher(t, env.URL)
		sw.set(modeNoLeader, "")
		// FailoverTimeout, not a short ctx, ends the retries: a request in
		// flight at a ctx deadline would end with the ctx's error instead.
		c, err := client.New(sw.url, client.Options{Trust: env.Trust(), Logger: slog.New(slog.DiscardHandler), FailoverTimeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, err = c.Run(ctx, ref, []byte("x"))
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeNoLeader {
			t.Fatalf("run with no leader ever: %v; want the no_leader error", err)
		}
		if sw.refused() < 2 {
			t.Errorf("%d tries; want it to retry", sw.refused())
		}
	})
}

// No replica answers: the error names each one, wraps ErrUnreachable, and
// comes within the caller's deadline.
func TestAllReplicasUnreachable(t *testing.T) {
	urls := []string{deadURL(t), deadURL(t), deadURL(t)}
	c, err := client.NewReplicas(urls, client.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = c.Identity(ctx)
	var re *client.ReplicasError
	if !errors.Is(err, client.ErrUnreachable) || !errors.As(err, &re) {
		t.Fatalf("Identity with every replica down: %v; want a ReplicasError wrapping ErrUnreachable", err)
	}
	for _, u := range urls {
		if !strings.Contains(err.Error(), u) {
			t.Errorf("error %q does not name %s", err, u)
		}
	}

	// A single URL fails at once, as before replication.
	one, err := client.New(urls[0], client.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	_, err = one.Identity(context.Background())
	if !errors.Is(err, client.ErrUnreachable) || errors.As(err, &re) {
		t.Errorf("single unreachable runtime: %v", err)
	}
}

// Runs from many goroutines keep going while the current replica stops:
// a run in flight may fail (it may have run), but later runs succeed on
// the other replica, under the same key.
func TestConcurrentRunsDuringFailover(t *testing.T) {
	a, b, ref := replicaPair(t, "")
	key := a.Server.ReceiptKey()
	c, err := client.NewReplicas([]string{a.URL, b.URL}, client.Options{Trust: a.Trust(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Run(ctx, ref, []byte("warm")); err != nil {
		t.Fatal(err)
	}
	var stopped atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			okAfterStop := 0
			deadline := time.Now().Add(30 * time.Second)
			for okAfterStop < 5 && time.Now().Before(deadline) {
				after := stopped.Load()
				res, err := c.Run(ctx, ref, []byte{byte(g)})
				if err != nil {
					if !errors.Is(err, client.ErrUnreachable) {
						errs <- err
						return
					}
					continue
				}
				if err := res.Receipt.Verify(key); err != nil {
					errs <- err
					return
				}
				if after {
					okAfterStop++
				}
			}
			if okAfterStop < 5 {
				errs <- errors.New("runs did not resume on the other replica")
			}
		}()
	}
	time.Sleep(50 * time.Millisecond) // let runs be in flight; no timing is asserted
	a.Stop()
	stopped.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c.Replica() != b.URL {
		t.Errorf("current replica %s, want %s", c.Replica(), b.URL)
	}
}

// NewReplicas checks its URLs.
func TestNewReplicasRefuses(t *testing.T) {
	for _, tc := range []struct {
		urls []string
		want string
	}{
		{[]string{"http://a:1", "http://a:1"}, "listed twice"},
		{[]string{"http://a:1", "ftp://b"}, "not an http(s) URL"},
		{make([]string, client.MaxKnownReplicas+1), "at most"},
	} {
		if _, err := client.NewReplicas(tc.urls, client.Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewReplicas(%q) = %v; want an error mentioning %q", tc.urls, err, tc.want)
		}
	}
	c, err := client.NewReplicas(nil, client.Options{})
	if err != nil || c.URL() != client.DefaultURL {
		t.Errorf("NewReplicas(nil): %v, URL %v", err, c)
	}
}

// GET /v1/replicas: a runtime without replicas answers 404, which means a
// single runtime.
func TestReplicaURLs(t *testing.T) {
	env := enclavetest.Start(t)
	c := env.Client(client.Options{})
	urls, err := c.ReplicaURLs(context.Background())
	if err != nil || urls != nil {
		t.Errorf("ReplicaURLs of a single runtime = %v, %v; want nil, nil", urls, err)
	}

	list := `{"replicas":[{"id":"r1","api_url":"http://10.0.0.1:7070/","raft_addr":"x"},{"id":"r2","api_url":"http://10.0.0.2:7070"},{"id":"r3","api_url":""}],"leader":"r2","commit_index":5}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(list))
	}))
	defer srv.Close()
	c2, _ := client.New(srv.URL, client.Options{})
	urls, err = c2.ReplicaURLs(context.Background())
	if err != nil || len(urls) != 2 || urls[0] != "http://10.0.0.2:7070" || urls[1] != "http://10.0.0.1:7070" {
		t.Errorf("ReplicaURLs = %q, %v; want the leader first", urls, err)
	}
}

func TestParseReplicaList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{`{"replicas":[]}`, nil, ""},
		{`{"replicas":[{"id":"a","api_url":"http://a"},{"id":"b","api_url":"http://b"}],"leader":{"id":"b"}}`, []string{"http://b", "http://a"}, ""},
		{`{"replicas":[{"id":"a","api_url":"http://a"},{"id":"b","api_url":"http://a/"}]}`, []string{"http://a"}, ""},
		{`{"replicas":[{"id":"a","api_url":"ftp://a"}]}`, nil, "not an http(s) URL"},
		{`{"replicas":{}}`, nil, "malformed"},
		{`[`, nil, "malformed"},
	} {
		got, err := client.ParseReplicaList([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseReplicaList(%s) = %v, %v; want an error mentioning %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("ParseReplicaList(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseReplicaList(f *testing.F) {
	f.Add([]byte(`{"replicas":[{"id":"a","api_url":"http://a"},{"id":"b","api_url":"http://b"}],"leader":"b"}`))
	f.Add([]byte(`{"replicas":[{"id":"a","api_url":"http://a"}],"leader":{"id":"a","api_url":"http://a"}}`))
	f.Add([]byte(`{"leader":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		urls, err := client.ParseReplicaList(data)
		if err != nil {
			return
		}
		if len(urls) > client.MaxKnownReplicas {
			t.Fatalf("%d URLs", len(urls))
		}
		// What it returns, a client takes.
		if len(urls) > 0 {
			if _, err := client.NewReplicas(urls, client.Options{}); err != nil {
				t.Fatalf("ParseReplicaList returned URLs NewReplicas refuses: %q: %v", urls, err)
			}
		}
	})
}
