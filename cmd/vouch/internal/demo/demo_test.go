package demo

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/node"
)

func TestDemo(t *testing.T) {
	for _, views := range []bool{false, true} {
		var out bytes.Buffer
		res, err := Run(context.Background(), Options{Nodes: 3, Views: views, Out: &out, ConvergeWithin: 15 * time.Second})
		if err != nil {
			t.Fatalf("views=%v: %v\n%s", views, err, out.String())
		}
		if res.Leader == "" || res.NewLeader == "" || res.Leader == res.NewLeader || res.NewSeq <= res.Seq {
			t.Fatalf("views=%v: result %+v", views, res)
		}
		if !strings.Contains(out.String(), "SIMULATED") {
			t.Fatal("the demo does not say its attestation is SIMULATED")
		}
		if !views && res.Leader != highestOf(res.NodeNames) {
			t.Fatalf("the original policy elected %s, not the highest port", res.Leader)
		}
	}
}

func highestOf(names []string) string { return highest(names) }

func TestDemoNeedsTwoNodes(t *testing.T) {
	if _, err := Run(context.Background(), Options{Nodes: 1, Out: &bytes.Buffer{}}); err == nil {
		t.Fatal("a one-node demo ran")
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoServesDashboard runs the demo with --watch: after the failover
// the printed dashboard URL serves the page and a cluster view that
// verifies, naming the new leader.
func TestDemoServesDashboard(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Options{Nodes: 3, Watch: true, Out: out, ConvergeWithin: 15 * time.Second})
		done <- err
	}()
	re := regexp.MustCompile(`(?m)^dashboard: (http://127\.0\.0\.1:\d+/)$`)
	// Deploying compiles the function: slow under the race detector.
	deadline := time.Now().Add(3 * time.Minute)
	var url string
	for url == "" {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("the demo printed no dashboard URL within 3 min:\n%s", out.String())
		}
		select {
		case err := <-done:
			t.Fatalf("the demo ended: %v\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "dashboard.js") {
		t.Fatalf("GET %s is not the dashboard:\n%s", url, page)
	}
	v, err := node.FetchClusterView(ctx, nil, url)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "leader is "+v.Leader+" (seq") {
		t.Errorf("the dashboard's node sees leader %s, not the demo's new leader:\n%s", v.Leader, out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDemoReplicas runs the demo over 3 replicas: the leader replica is
// killed, a surviving one takes over raft, the nodes keep a certified
// leader through it, and then fail over to a new leader certified by the
// survivors. The member-list scheme here; cmd/vouch's TestE2EDemoReplicas
// runs signed views as a process (each run compiles the function on three
// replicas: slow under the race detector).
func TestDemoReplicas(t *testing.T) {
	for _, views := range []bool{false} {
		var out bytes.Buffer
		// Relaxed raft timing, as the enclave's replica tests use: the race
		// detector stalls a replica compiling the function long enough to
		// lose 500 ms leases.
		res, err := Run(context.Background(), Options{Nodes: 3, Replicas: 3, Views: views, Out: &out, ConvergeWithin: 30 * time.Second, RaftTimeout: 2 * time.Second})
		if err != nil {
			t.Fatalf("views=%v: %v\n%s", views, err, out.String())
		}
		if len(res.ReplicaURLs) != 3 || res.ReplicaLeader == "" || res.NewReplicaLeader == "" || res.ReplicaLeader == res.NewReplicaLeader {
			t.Fatalf("views=%v: replicas in result %+v\n%s", views, res, out.String())
		}
		if res.RecertLeader == "" || res.Leader != res.RecertLeader || res.NewLeader == res.Leader || res.NewSeq <= res.RecertSeq || res.RecertSeq < res.Seq {
			t.Fatalf("views=%v: result %+v\n%s", views, res, out.String())
		}
		for _, want := range []string{"SIMULATED", "killing the raft leader replica " + res.ReplicaLeader, "raft failover: replica " + res.NewReplicaLeader,
			"elections go on", "killing the leader node", "certified by the surviving replicas", "dashboard"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("views=%v: the demo does not say %q:\n%s", views, want, out.String())
			}
		}
	}
}

func TestDemoReplicaCounts(t *testing.T) {
	for _, n := range []int{-1, 2, 4, 9} {
		if _, err := Run(context.Background(), Options{Replicas: n, Out: &bytes.Buffer{}}); err == nil || !strings.Contains(err.Error(), "odd number") {
			t.Errorf("--replicas %d: err %v, want a refusal", n, err)
		}
	}
}
