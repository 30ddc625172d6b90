package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// statusJSON is the part of `vouch status -o json` the test reads.
type statusJSON struct {
	Nodes []struct {
		URL         string `json:"url"`
		Error       string `json:"error"`
		Verified    bool   `json:"verified"`
		VerifyError string `json:"verify_error"`
		View        *struct {
			Node    string `json:"node"`
			Leader  string `json:"leader"`
			Seq     uint64 `json:"seq"`
			Members []struct {
				Name  string `json:"name"`
				State string `json:"state"`
			} `json:"members"`
		} `json:"view"`
	} `json:"nodes"`
}

// vouchStatus runs `vouch status args...` and returns stdout, stderr and
// the exit code.
func vouchStatus(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(vouchBin, append([]string{"status"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// TestStatusAndDashboard runs a runtime and three `vouch node --http`
// processes: `vouch status` shows the cluster and verifies its
// certificate, follows a failover, and refuses a tampered certificate;
// the dashboard a node serves at / shows the same in headless Chromium.
func TestStatusAndDashboard(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ps := []int{freePort(t), freePort(t), freePort(t)}
	slices.Sort(ps) // the highest port leads
	p1, p2, p3 := ps[0], ps[1], ps[2]
	n1 := c.startNode(p1)
	n2 := c.startNode(p2, p1)
	n3 := c.startNode(p3, p1)
	names := []string{fmt.Sprint(p1), fmt.Sprint(p2), fmt.Sprint(p3)}
	c.waitLeader(names[2], 30*time.Second, names...)
	url1 := fmt.Sprintf("http://127.0.0.1:%d", n1.httpPort)
	both := fmt.Sprintf("%s,127.0.0.1:%d", url1, n2.httpPort)

	// One shot, JSON, from two nodes: both verify leader p3.
	var st statusJSON
	eventually(t, 30*time.Second, "vouch status -o json shows leader "+names[2]+", verified", func() error {
		out, errOut, code := vouchStatus(t, "--node", both, "-o", "json")
		if code != 0 {
			return fmt.Errorf("exit %d: %s", code, errOut)
		}
		st = statusJSON{}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return err
		}
		for _, n := range st.Nodes {
			if n.View == nil || !n.Verified || n.View.Leader != names[2] || len(n.View.Members) != 3 {
				return fmt.Errorf("%s: %s", n.URL, out)
			}
		}
		return nil
	})

	// Text: the leader, the members, VERIFIED.
	out, _, code := vouchStatus(t, "--node", both)
	for _, want := range []string{"cluster default, as node " + names[0], "leader", names[2] + " *", "VERIFIED", "MEMBER", "NODE"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("vouch status (exit %d) does not show %q:\n%s", code, want, out)
		}
	}

	// The dashboard, from the real process.
	resp, err := httpc.Get(url1 + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte("web/dashboard.js")) {
		t.Fatalf("GET / of vouch node --http: %s\n%s", resp.Status, page)
	}

	// The dashboard in headless Chromium: the leader, verified in the
	// browser; after the kill below, the new leader.
	browser := chromium(t)
	leaderIs := func(name string) string {
		return `document.getElementById('leader').textContent === '` + name + `' && document.getElementById('verdict').dataset.state === 'verified'`
	}
	if browser != nil {
		if err := chromedp.Do(browser, chromedp.Navigate(url1+"/")); err != nil {
			t.Fatal(err)
		}
		pageShows(t, browser, "leader "+names[2]+", verified", leaderIs(names[2]))
	}

	// --watch prints a refresh per interval until interrupted.
	watch := start(t, "status --watch", c.dir, nil, "status", "--node", url1, "--watch", "200ms", "-o", "json")

	// Kill the leader: status follows the failover.
	n3.kill()
	c.waitLeader(names[1], 30*time.Second, names[:2]...)
	eventually(t, 30*time.Second, "vouch status shows leader "+names[1], func() error {
		out, errOut, code := vouchStatus(t, "--node", url1, "-o", "json")
		if code != 0 {
			return fmt.Errorf("exit %d: %s", code, errOut)
		}
		st = statusJSON{}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return err
		}
		if n := st.Nodes[0]; n.View == nil || !n.Verified || n.View.Leader != names[1] {
			return fmt.Errorf("%s", out)
		}
		return nil
	})
	eventually(t, 30*time.Second, "vouch status --watch prints leader "+names[1], func() error {
		if !strings.Contains(watch.out.String(), `"leader":"`+names[1]+`"`) {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if browser != nil {
		pageShows(t, browser, "leader "+names[1]+" after the failover, verified", leaderIs(names[1]))
	}
	if code := watch.signal(syscall.SIGINT, 10*time.Second); code != 0 {
		t.Fatalf("vouch status --watch exited %d on SIGINT", code)
	}
	var leaders []string
	sc := bufio.NewScanner(strings.NewReader(watch.out.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s statusJSON
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("vouch status --watch -o json printed a line that is not JSON: %v\n%s", err, sc.Text())
		}
		if v := s.Nodes[0].View; v != nil && (len(leaders) == 0 || leaders[len(leaders)-1] != v.Leader) {
			leaders = append(leaders, v.Leader)
		}
	}
	if len(leaders) < 2 || leaders[0] != names[2] || leaders[len(leaders)-1] != names[1] {
		t.Errorf("vouch status --watch saw leaders %v in %d lines, want %s then %s", leaders, strings.Count(watch.out.String(), "\n"), names[2], names[1])
	}

	// A node (or a man in the middle) that alters one bit of the
	// signature: NOT VERIFIED, exit 1.
	tamper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if err := getJSON(url1+"/cluster", &v); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		rc := v["certificate"].(map[string]any)["receipt"].(map[string]any)
		sig, _ := base64.StdEncoding.DecodeString(rc["signature"].(string))
		sig[0] ^= 1
		rc["signature"] = base64.StdEncoding.EncodeToString(sig)
		json.NewEncoder(w).Encode(v)
	}))
	defer tamper.Close()
	out, errOut, code := vouchStatus(t, "--node", tamper.URL)
	if code != 1 || !strings.Contains(out, "NOT VERIFIED") || !strings.Contains(errOut, "signature does not verify") {
		t.Fatalf("vouch status of a tampered certificate: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// No node answers: exit 1, with a hint.
	_, errOut, code = vouchStatus(t, "--node", fmt.Sprint(freePort(t)))
	if code != 1 || !strings.Contains(errOut, "no node answered") {
		t.Fatalf("vouch status of nothing: exit %d, stderr %s", code, errOut)
	}
}
