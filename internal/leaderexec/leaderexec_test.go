//go:build unix

package leaderexec

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitFile polls until path exists and returns its contents.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 && bytes.HasSuffix(b, []byte("\n")) {
			return string(b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
	return ""
}

func TestRunPassesEnvAndReportsExit(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	res, err := Run(context.Background(), Command{
		Args: []string{"/bin/sh", "-c", `echo "$VOUCH_LEADER $VOUCH_FENCING_TOKEN" > ` + out + `; exit 3`},
		Env:  []string{"VOUCH_LEADER=n1", "VOUCH_FENCING_TOKEN=42"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Exited || res.Killed || res.Err == nil || !strings.Contains(res.Err.Error(), "exit status 3") {
		t.Fatalf("result %+v", res)
	}
	if got := waitFile(t, out); got != "n1 42\n" {
		t.Fatalf("env: %q", got)
	}
}

func TestRunTermsTheGroupWhenCtxEnds(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	// The script starts a grandchild, then waits; both must be gone when
	// Run returns.
	script := `sleep 300 & echo "$$ $!" > ` + pids + `; trap 'echo term >> ` + filepath.Join(dir, "log") + `; exit 0' TERM; while :; do sleep 0.05; done`
	ctx, cancel := context.WithCancel(context.Background())
	var signalled time.Time
	done := make(chan Result, 1)
	go func() {
		res, err := Run(ctx, Command{Args: []string{"/bin/sh", "-c", script}, Grace: 30 * time.Second, Signalled: func(at time.Time) { signalled = at }})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	ids := strings.Fields(waitFile(t, pids))
	cancel()
	res := <-done
	if res.Exited || res.Killed || res.Err != nil || signalled.IsZero() {
		t.Fatalf("result %+v, signalled %v", res, signalled)
	}
	if got := waitFile(t, filepath.Join(dir, "log")); got != "term\n" {
		t.Fatalf("log %q", got)
	}
	// SIGKILL is delivered asynchronously: the group is gone soon, not
	// at once.
	for _, s := range ids {
		pid, _ := strconv.Atoi(s)
		for deadline := time.Now().Add(30 * time.Second); alive(pid); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d of the group survives", pid)
			}
		}
	}
}

func TestRunKillsAfterGrace(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result, 1)
	go func() {
		res, _ := Run(ctx, Command{Args: []string{"/bin/sh", "-c", `trap '' TERM; echo ok > ` + ready + `; while :; do sleep 0.05; done`}, Grace: 200 * time.Millisecond})
		done <- res
	}()
	waitFile(t, ready)
	cancel()
	select {
	case res := <-done:
		if !res.Killed || res.Exited {
			t.Fatalf("result %+v", res)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the grace")
	}
}

// endedCtx is a context whose Done never closes but whose Err reports an
// end, as a leadership context does right after a pause.
type endedCtx struct{ context.Context }

func (endedCtx) Err() error { return context.DeadlineExceeded }

func TestRunPollsErr(t *testing.T) {
	// A context that has ended by its Err but whose Done channel has not
	// closed yet: the command must not even start.
	if _, err := Run(endedCtx{context.Background()}, Command{Args: []string{"/bin/true"}}); err == nil {
		t.Fatal("started under an ended context")
	}
}

func TestRunStartError(t *testing.T) {
	if _, err := Run(context.Background(), Command{Args: []string{filepath.Join(t.TempDir(), "missing")}}); err == nil {
		t.Fatal("no error for a missing command")
	}
	if _, err := Run(context.Background(), Command{}); err == nil {
		t.Fatal("no error for an empty command")
	}
}

func TestHooksStdinEnvAndBound(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var errs []error
	h := &Hooks{Cmd: `cat > ` + dir + `/"$VOUCH_LEADER"; sleep 0.2`, Max: 1, Done: func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }}
	h.Fire([]byte("{\"a\":1}\n"), []string{"VOUCH_LEADER=one"})
	h.Fire([]byte("two\n"), []string{"VOUCH_LEADER=two"})     // waits
	h.Fire([]byte("three\n"), []string{"VOUCH_LEADER=three"}) // replaces two
	h.Wait()
	if got := waitFile(t, filepath.Join(dir, "one")); got != "{\"a\":1}\n" {
		t.Fatalf("stdin %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "two")); err == nil {
		t.Error("the superseded change ran")
	}
	waitFile(t, filepath.Join(dir, "three"))
	if len(errs) != 2 || errs[0] != nil || errs[1] != nil {
		t.Fatalf("errors %v", errs)
	}
}

func TestHooksTimeout(t *testing.T) {
	errc := make(chan error, 1)
	h := &Hooks{Cmd: `sleep 30`, Timeout: 100 * time.Millisecond, Done: func(err error) { errc <- err }}
	h.Fire(nil, nil)
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("err %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the hook was not killed")
	}
}

func alive(pid int) bool {
	// A zombie is gone for our purpose; signal 0 succeeds on it, so read
	// its state.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}
