package e2e

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium returns a headless Chromium's context, or nil when none is on
// PATH (and VOUCH_REQUIRE_CHROMIUM is unset): the caller then skips its
// browser checks.
func chromium(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("VOUCH_REQUIRE_CHROMIUM") != "" {
			t.Fatal("VOUCH_REQUIRE_CHROMIUM is set, but no chromium, chromium-browser or google-chrome is on PATH")
		}
		t.Log("no Chromium on PATH (apt-get install -y chromium): skipping the dashboard's browser checks")
		return nil
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// pageShows polls a JavaScript condition on the page for at most 30 s.
func pageShows(t *testing.T, ctx context.Context, what, cond string) {
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
