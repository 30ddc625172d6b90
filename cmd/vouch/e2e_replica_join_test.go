package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2EEnclaveJoin runs `vouch enclave join URL` as a process: it is
// `vouch enclave --join URL`, and the replica becomes a voter of the
// service the first one bootstrapped.
func TestE2EEnclaveJoin(t *testing.T) {
	t.Parallel()
	work, root := t.TempDir(), t.TempDir()
	env := []string{"VOUCH_SIMULATED_ROOT=" + root}
	r1 := startEnclave(t, work, filepath.Join(t.TempDir(), "r1"), 0, env,
		"--replica-id", "r1", "--raft-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--bootstrap")
	deadline := time.Now().Add(60 * time.Second)
	for rs, ok := replicaSet(r1.url); !ok || rs.Leader != "r1"; rs, ok = replicaSet(r1.url) {
		if time.Now().After(deadline) {
			t.Fatal("r1 does not lead")
		}
		time.Sleep(100 * time.Millisecond)
	}
	r2 := startEnclave(t, work, filepath.Join(t.TempDir(), "r2"), 0, env,
		"join", r1.url, "--replica-id", "r2", "--raft-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	for {
		rs, ok := replicaSet(r2.url)
		voters := 0
		for _, m := range rs.Replicas {
			if m.Suffrage == "Voter" {
				voters++
			}
		}
		if ok && voters == 2 && rs.Self == "r2" && rs.Leader == "r1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("r2 is not a voter following r1: %+v\n%s", rs, r2.stderr())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(r2.stderr(), "joined the service") {
		t.Errorf("r2 does not say it joined:\n%s", r2.stderr())
	}
}

// The flags of `vouch enclave join`: one URL, no --join besides it.
func TestEnclaveJoinArgs(t *testing.T) {
	cleanEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"enclave", "join"}, "enclave join takes the URL of one running replica"},
		{[]string{"enclave", "join", "http://a:1", "http://b:1"}, "enclave join takes the URL of one running replica"},
		{[]string{"enclave", "join", "a:1", "--replica-id", "r2", "--raft-listen", "127.0.0.1:0"}, `enclave join "a:1": want the API URL of a running replica`},
		{[]string{"enclave", "join", "http://a:1", "--join", "http://b:1"}, "leave out --join"},
		{[]string{"enclave", "join", "http://a:1", "--bootstrap", "--replica-id", "r2", "--raft-listen", "127.0.0.1:0"}, "give one of them"},
		{[]string{"enclave", "join", "http://a:1"}, "need --replica-id"},
	} {
		r := vouch(t, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("want exit 2 and %q:\n%s", tc.want, r)
		}
	}
	r := vouch(t, "help", "enclave")
	if !strings.Contains(r.stdout, "vouch enclave join URL --replica-id ID --raft-listen HOST:PORT") {
		t.Errorf("vouch help enclave does not show join:\n%s", r)
	}
}
