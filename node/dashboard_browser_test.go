package node_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/node"
)

// findChromium returns a Chromium or Chrome binary on PATH, or skips.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("VOUCH_REQUIRE_CHROMIUM") != "" {
		t.Fatal("VOUCH_REQUIRE_CHROMIUM is set, but no chromium, chromium-browser or google-chrome is on PATH")
	}
	t.Skip("no Chromium on PATH (looked for chromium, chromium-browser, google-chrome): install Debian's chromium package (apt-get install -y chromium) to run the dashboard's browser test")
	return ""
}

// browser starts a headless Chromium for the test and returns its context.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := findChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// waitPage polls a JavaScript condition on the page for at most 30 s.
func waitPage(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		seen, _ := chromedp.Run(sctx, chromedp.Evaluate[string](`['leader', 'verdict-title', 'verdict-detail'].map(id => document.getElementById(id).textContent).join(' | ')`))
		t.Fatalf("the dashboard did not show %s within 30 s: %v (the page shows: %s)", what, err, seen)
	}
}

// showsLeader is the condition: the page shows leader and a verdict state.
func showsLeader(leader, state string) string {
	return `document.getElementById('leader').textContent === ` + jsString(leader) +
		` && document.getElementById('verdict').dataset.state === ` + jsString(state)
}

func jsString(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestDashboardInBrowser opens the dashboard of a real 3-node cluster in
// headless Chromium: the page verifies the certificate with WebCrypto,
// follows a failover, and marks a certificate tampered with on the way
// (by a proxy in front of the node) as NOT VERIFIED.
func TestDashboardInBrowser(t *testing.T) {
	ctx := browser(t)
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	a := startNode(t, env, ref, "5000", nil)
	b := startNode(t, env, ref, "5001", []string{a.Addr()})
	c := startNode(t, env, ref, "5002", []string{a.Addr()})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	// The browser talks to the node through a proxy that can rewrite
	// GET /cluster, as a man in the middle (or a lying node) would.
	proxy := enclavetest.NewProxy(t, srv.URL)
	var tamper atomic.Value // func(map[string]any)
	tamper.Store(func(map[string]any) {})
	proxy.Tamper(func(r *http.Request, status int, body []byte) []byte {
		if r.URL.Path != "/cluster" || status != http.StatusOK {
			return body
		}
		var v map[string]any
		if json.Unmarshal(body, &v) != nil {
			return body
		}
		tamper.Load().(func(map[string]any))(v)
		out, _ := json.Marshal(v)
		return out
	})
	waitLeader(t, []*node.Node{a, b, c}, "5002", 30*time.Second)

	if err := chromedp.Do(ctx, chromedp.Navigate(proxy.URL+"/")); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, "leader 5002, verified", showsLeader("5002", "verified"))
	title, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('verdict-title').textContent`))
	if err != nil || !strings.Contains(title, "verified in your browser") {
		t.Fatalf("verdict title %q (%v), want it to say verified in your browser", title, err)
	}

	// Kill the leader: the page follows the failover and verifies the
	// new certificate.
	c.Kill()
	waitPage(t, ctx, "leader 5001 after the failover, verified", showsLeader("5001", "verified"))
	waitPage(t, ctx, "the failover in the timeline", `document.getElementById('timeline').textContent.includes('failover: 5002 → 5001')`)

	// One bit of the signature flipped: NOT VERIFIED.
	tamper.Store(func(v map[string]any) {
		r := v["certificate"].(map[string]any)["receipt"].(map[string]any)
		sig, _ := base64.StdEncoding.DecodeString(r["signature"].(string))
		sig[10] ^= 1
		r["signature"] = base64.StdEncoding.EncodeToString(sig)
	})
	waitPage(t, ctx, "a tampered signature as NOT VERIFIED", showsLeader("5001", "not-verified")+
		` && document.getElementById('verdict-title').textContent.includes('NOT VERIFIED')`+
		` && document.getElementById('verdict-detail').textContent.includes('signature does not verify')`)

	// The output changed (the leader it names): its digest no longer
	// matches the signed one.
	tamper.Store(func(v map[string]any) {
		cert := v["certificate"].(map[string]any)
		out, _ := base64.StdEncoding.DecodeString(cert["output"].(string))
		cert["output"] = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(out), `"leader":"5001"`, `"leader":"5000"`, 1)))
		v["leader"] = "5000"
	})
	waitPage(t, ctx, "a tampered output as NOT VERIFIED", showsLeader("5000", "not-verified")+
		` && document.getElementById('verdict-detail').textContent.includes('sha256(output)')`)

	// Untouched again: verified.
	tamper.Store(func(map[string]any) {})
	waitPage(t, ctx, "the real certificate verified again", showsLeader("5001", "verified"))
	waitPage(t, ctx, "the rejection in the timeline", `document.getElementById('timeline').textContent.includes('NOT VERIFIED')`)
}

// TestDashboardTermsInBrowser opens the dashboard of a 5-node
// signed-views cluster: the page verifies term certificates and counts
// the lease down, before and after a failover. It also takes the README's
// screenshot when VOUCH_SCREENSHOT names the PNG file to write:
//
//	VOUCH_SCREENSHOT=$PWD/../docs/dashboard.png go test -run TestDashboardTermsInBrowser ./node/
func TestDashboardTermsInBrowser(t *testing.T) {
	ctx := browser(t)
	env := enclavetest.Start(t)
	names := []string{"6001", "6002", "6003", "6004", "6005"}
	ref, sc, keys := viewsCluster(t, env, "highest", names...)
	acted := make(chan string, 64)
	nodes := map[string]*node.Node{}
	first := startViewsNode(t, env, ref, sc, keys[names[0]], names[0], nil, acted)
	nodes[names[0]] = first
	for _, name := range names[1:] {
		nodes[name] = startViewsNode(t, env, ref, sc, keys[name], name, []string{first.Addr()}, acted)
	}
	leader, term := waitTerm(t, nodes, 1, 30*time.Second)
	watcher := first // the dashboard's node, one that outlives the failover
	if leader == names[0] {
		watcher = nodes[names[1]]
	}
	srv := httptest.NewServer(watcher.Handler())
	defer srv.Close()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, "the leader, verified", showsLeader(leader, "verified"))
	waitPage(t, ctx, "the term and a lease countdown", `document.getElementById('seq-label').textContent === 'term'`+
		` && /^[0-9.]+ s$|^lapsed$/.test(document.getElementById('lease').textContent)`)
	nodes[leader].Kill()
	delete(nodes, leader)
	next, _ := waitTerm(t, nodes, term+1, 30*time.Second)
	waitPage(t, ctx, "the new leader, verified", showsLeader(next, "verified"))
	waitPage(t, ctx, "the failover in the timeline", `document.getElementById('timeline').textContent.includes('failover: `+leader+` → `+next+`')`)
	out := os.Getenv("VOUCH_SCREENSHOT")
	if out == "" {
		return
	}
	time.Sleep(time.Second) // let the lease countdown and member states settle
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", out, len(png))
}
