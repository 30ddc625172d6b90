package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestE2EDemoReplicas runs `vouch demo --replicas 3 --views` as a real
// process: it exits 0 after the leader replica's and the leader node's
// failovers and prints the replica set, both failovers and the dashboard.
func TestE2EDemoReplicas(t *testing.T) {
	t.Parallel()
	bin := vouchBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Relaxed raft timing, as the other replica tests use: this runs beside
	// other tests, and three replicas compiling the function at once on a
	// loaded machine can miss 500 ms leases.
	cmd := exec.CommandContext(ctx, bin, "demo", "--replicas", "3", "--views", "--converge-within", "30s", "--raft-timeout", "2s")
	cmd.Dir = t.TempDir()
	cmd.Env = baseEnv
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: cmd.Args[1:], stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		t.Fatalf("%v\n%s", err, r)
	}
	for _, want := range []string{"starting 3 runtime replicas (raft heartbeat and election timeouts 2s, leader lease 1s)", "r1   API https://127.0.0.1:",
		"raft failover: replica r", "elections go on", "failover: all 4 survivors verified a new certificate", "dashboard (node "} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("the demo does not say %q:\n%s", want, r)
		}
	}
	if !strings.Contains(r.stderr, "vouch: demo passed: replica failover from r") {
		t.Fatalf("no \"demo passed\" line:\n%s", r)
	}
}

// --replicas takes an odd count, and says why.
func TestDemoReplicasFlag(t *testing.T) {
	cleanEnv(t)
	for _, n := range []string{"0", "2", "4", "9"} {
		r := vouch(t, "demo", "--replicas", n)
		if r.code != 2 || !strings.Contains(r.stderr, "want an odd number from 1 to 7: raft needs a majority") {
			t.Errorf("--replicas %s: want exit 2 and the reason:\n%s", n, r)
		}
	}
}
