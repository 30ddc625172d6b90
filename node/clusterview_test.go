package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/node"
)

// waitVerified polls GET /cluster at base until its certificate names
// want (any leader when empty) and verifies.
func waitVerified(t *testing.T, base, want string) *node.ClusterView {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		v, err := node.FetchClusterView(context.Background(), nil, base)
		if err == nil {
			err = v.Verify()
		}
		if err == nil && v.Leader != "" && (want == "" || v.Leader == want) {
			return v
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s/cluster did not show a verified leader %q within 30 s: %v", base, want, last)
	return nil
}

func TestClusterViewVerifies(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	a := startNode(t, env, ref, "5000", nil)
	b := startNode(t, env, ref, "5001", []string{a.Addr()})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	waitLeader(t, []*node.Node{a, b}, "5001", 30*time.Second)
	v := waitVerified(t, srv.URL, "5001")
	if v.Scheme != "seq" || v.Node != "5000" || v.Certificate == nil || len(v.Runtime.ReceiptKey) != 32 || len(v.Members) != 2 {
		t.Fatalf("unexpected view: %+v", v)
	}

	// The same view, each time with one thing changed, is refused.
	for _, c := range []struct {
		name, want string
		tamper     func(v *node.ClusterView)
	}{
		{"signature", "bad_signature", func(v *node.ClusterView) { v.Certificate.Receipt.Signature[3] ^= 1 }},
		{"output", "sha256(output)", func(v *node.ClusterView) { v.Certificate.Output[len(v.Certificate.Output)-2] ^= 1 }},
		{"key", "fingerprint", func(v *node.ClusterView) { v.Runtime.ReceiptKey[0] ^= 1 }},
		{"leader", "the node reports", func(v *node.ClusterView) { v.Leader = "5000" }},
		{"seq", "the node reports", func(v *node.ClusterView) { v.Seq++ }},
		{"none", "no certificate", func(v *node.ClusterView) { v.Certificate = nil }},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, _ := json.Marshal(v)
			w, err := node.DecodeClusterView(b)
			if err != nil {
				t.Fatal(err)
			}
			c.tamper(w)
			err = w.Verify()
			if !errors.Is(err, node.ErrNotVerified) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Verify() = %v, want an error with %q", err, c.want)
			}
		})
	}
}

func TestClusterViewTerms(t *testing.T) {
	env := enclavetest.Start(t)
	ref, sc, keys := viewsCluster(t, env, "highest", "6001", "6002", "6003")
	acted := make(chan string, 64)
	nodes := map[string]*node.Node{}
	first := startViewsNode(t, env, ref, sc, keys["6001"], "6001", nil, acted)
	nodes["6001"] = first
	for _, name := range []string{"6002", "6003"} {
		nodes[name] = startViewsNode(t, env, ref, sc, keys[name], name, []string{first.Addr()}, acted)
	}
	leader, term := waitTerm(t, nodes, 1, 30*time.Second)
	srv := httptest.NewServer(first.Handler())
	defer srv.Close()
	v := waitVerified(t, srv.URL, leader)
	if v.Scheme != "term" || v.Seq < term || v.LeaseMillis != 1000 || v.LeaseUntil == nil {
		t.Fatalf("unexpected term view: scheme %q seq %d lease %d until %v", v.Scheme, v.Seq, v.LeaseMillis, v.LeaseUntil)
	}
}

func TestDashboardServed(t *testing.T) {
	srv := httptest.NewServer(node.DashboardHandler())
	defer srv.Close()
	for path, want := range map[string]string{"/": "<title>vouch cluster</title>", "/web/dashboard.js": "crypto.subtle.verify", "/web/dashboard.css": ".verdict"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) || resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: %s, CSP %q, body without %q", path, resp.Status, resp.Header.Get("Content-Security-Policy"), want)
		}
	}
	if resp, err := http.Get(srv.URL + "/nothing"); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET /nothing: %v %v, want 404", resp.Status, err)
	}
}

func FuzzDecodeClusterView(f *testing.F) {
	f.Add([]byte(`{"node":"a","cluster":"c","scheme":"seq","leader":"a","seq":1,"members":[],"runtime":{"receipt_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","key_id":"x"},"certificate":{"output":"e30=","receipt":{"function_id":"f","seq":1,"signature":"AA=="}}}`))
	f.Add([]byte(`{"node":"a"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := node.DecodeClusterView(b)
		if err != nil {
			return
		}
		if v.Verify() == nil && v.Certificate == nil {
			t.Fatal("a view without a certificate verified")
		}
	})
}
