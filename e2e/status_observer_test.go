package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// observerStatusJSON is the part of `vouch status -n -o json` the test
// reads.
type observerStatusJSON struct {
	Nodes []struct {
		Source   string   `json:"source"`
		Seeds    []string `json:"seeds"`
		Error    string   `json:"error"`
		Verified bool     `json:"verified"`
		View     *struct {
			Node     string `json:"node"`
			Leader   string `json:"leader"`
			Seq      uint64 `json:"seq"`
			Observer bool   `json:"observer"`
			Members  []struct {
				Name  string `json:"name"`
				State string `json:"state"`
			} `json:"members"`
		} `json:"view"`
	} `json:"nodes"`
}

// TestStatusObserver runs three `vouch node` processes WITHOUT --http:
// `vouch status --ref -n` joins their gossip as an observer and shows the
// leader, verified (text and JSON, also spelled --cluster-ref --seed);
// after the leader is killed, it shows the new one, one-shot and with
// --watch.
func TestStatusObserver(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ps := []int{freePort(t), freePort(t), freePort(t)}
	slices.Sort(ps) // the highest port leads
	var names []string
	var procs []*proc
	for i, p := range ps {
		args := []string{"node", "-p", strconv.Itoa(p), "-f", c.fid, "-fh", c.sum}
		if i > 0 {
			args = append(args, "-n", strconv.Itoa(ps[0]))
		}
		names = append(names, strconv.Itoa(p))
		procs = append(procs, start(t, "node "+names[i], c.dir, nil, args...))
	}
	ref := filepath.Join(c.dir, "leader_election.json")
	seed := strconv.Itoa(ps[0])

	status := func(want string, args ...string) (observerStatusJSON, error) {
		var st observerStatusJSON
		out, errOut, code := vouchStatus(t, append(args, "-o", "json", "--timeout", "10s")...)
		if code != 0 {
			return st, fmt.Errorf("exit %d: %s%s", code, out, errOut)
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return st, fmt.Errorf("%v: %s", err, out)
		}
		n := st.Nodes[0]
		if n.Source != "observer" || n.View == nil || !n.View.Observer || !n.Verified || n.View.Leader != want {
			return st, fmt.Errorf("want leader %s, verified by an observer: %s", want, out)
		}
		return st, nil
	}
	eventually(t, 60*time.Second, "vouch status -n shows leader "+names[2]+", verified", func() error {
		st, err := status(names[2], "--ref", ref, "-n", seed)
		if err != nil {
			return err
		}
		if k := len(st.Nodes[0].View.Members); k != 3 {
			return fmt.Errorf("%d members, want 3", k)
		}
		return nil
	})
	// The brief's spelling, and a seed given as HOST:PORT.
	if _, err := status(names[2], "--cluster-ref", ref, "--seed", "127.0.0.1:"+strconv.Itoa(ps[1])); err != nil {
		t.Fatal(err)
	}

	// Text: the observer, the leader, the members, VERIFIED; the
	// observer itself is no member.
	out, errOut, code := vouchStatus(t, "--ref", ref, "-n", seed, "--timeout", "10s")
	for _, want := range []string{"as observer observer-", "joined through 127.0.0.1:" + seed, names[2] + " *", "VERIFIED", "MEMBER"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("vouch status -n (exit %d) does not show %q:\n%s\n%s", code, want, out, errOut)
		}
	}
	t.Logf("vouch status -n:\n%s", out)
	if strings.Count(out, "alive") != 3 {
		t.Errorf("vouch status -n lists other than three alive members:\n%s", out)
	}

	watch := start(t, "status --watch", c.dir, nil, "status", "--ref", ref, "-n", seed, "--watch", "200ms", "-o", "json")

	// Kill the leader: status follows the failover.
	procs[2].kill()
	eventually(t, 60*time.Second, "vouch status -n shows leader "+names[1], func() error {
		_, err := status(names[1], "--ref", ref, "-n", seed)
		return err
	})
	eventually(t, 30*time.Second, "vouch status -n --watch prints leader "+names[1], func() error {
		if !strings.Contains(watch.out.String(), `"leader":"`+names[1]+`"`) {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if code := watch.signal(syscall.SIGINT, 10*time.Second); code != 0 {
		t.Fatalf("vouch status --watch exited %d on SIGINT", code)
	}

	// Nothing to join: exit 1 with a hint, within the timeout.
	_, errOut, code = vouchStatus(t, "--ref", ref, "-n", strconv.Itoa(freePort(t)), "--timeout", "1s")
	if code != 1 || !strings.Contains(errOut, "joined no node") {
		t.Fatalf("vouch status -n of nothing: exit %d, stderr %s", code, errOut)
	}
}

// TestStatusObserverSignedViews: with signed views, `vouch status -n
// --cluster-config` verifies the term certificate and shows the lease.
func TestStatusObserverSignedViews(t *testing.T) {
	t.Parallel()
	c := startViewsCluster(t, 3)
	var seed string
	for name := range c.nodes {
		seed = name
		break
	}
	ref, cfg := filepath.Join(c.dir, "leader_election.json"), filepath.Join(c.dir, "cluster.json")
	eventually(t, 60*time.Second, "vouch status -n --cluster-config shows a verified term", func() error {
		out, errOut, code := vouchStatus(t, "--ref", ref, "-n", seed, "--cluster-config", cfg, "-o", "json", "--timeout", "10s")
		if code != 0 {
			return fmt.Errorf("exit %d: %s%s", code, out, errOut)
		}
		var st struct {
			Nodes []struct {
				Verified bool `json:"verified"`
				View     struct {
					Cluster    string     `json:"cluster"`
					Scheme     string     `json:"scheme"`
					Leader     string     `json:"leader"`
					Seq        uint64     `json:"seq"`
					LeaseUntil *time.Time `json:"lease_until"`
					Members    []struct{} `json:"members"`
				} `json:"view"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return err
		}
		v := st.Nodes[0].View
		if !st.Nodes[0].Verified || v.Cluster != "pause" || v.Scheme != "term" || c.nodes[v.Leader] == nil || v.Seq == 0 || v.LeaseUntil == nil || len(v.Members) != 3 {
			return fmt.Errorf("not a verified term of the three: %s", out)
		}
		return nil
	})
	out, _, code := vouchStatus(t, "--ref", ref, "-n", seed, "--cluster-config", cfg, "--timeout", "10s")
	if code != 0 || !strings.Contains(out, "term ") || !strings.Contains(out, "lease") || !strings.Contains(out, "VERIFIED") {
		t.Fatalf("vouch status -n --cluster-config (exit %d):\n%s", code, out)
	}
	t.Logf("vouch status -n --cluster-config:\n%s", out)

	// Without the configuration the observer cannot verify terms, and
	// says what to pass.
	_, errOut, code := vouchStatus(t, "--ref", ref, "-n", seed, "--cluster", "pause", "--timeout", "3s")
	if code != 1 || !strings.Contains(errOut, "--cluster-config") {
		t.Fatalf("vouch status -n without --cluster-config on signed views: exit %d, stderr %s", code, errOut)
	}
	t.Logf("without --cluster-config: %s", errOut)
}
