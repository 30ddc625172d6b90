package main

import (
	"slices"
	"strings"
	"testing"
)

func TestNodeURLFlag(t *testing.T) {
	var f nodeURLFlag
	for _, v := range []string{"8080", "127.0.0.1:8081,host.example:9000", " http://10.0.0.1:80/ ", "https://n.example"} {
		if err := f.Set(v); err != nil {
			t.Fatalf("Set(%q): %v", v, err)
		}
	}
	want := []string{"http://127.0.0.1:8080", "http://127.0.0.1:8081", "http://host.example:9000", "http://10.0.0.1:80", "https://n.example"}
	if !slices.Equal(f, want) {
		t.Fatalf("got %q, want %q", f, want)
	}
	for _, bad := range []string{"ftp://x:1", "http://"} {
		if err := f.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

func TestStatusUsage(t *testing.T) {
	r := vouch(t, "status")
	if r.code != 2 || !strings.Contains(r.stderr, "--node URL") {
		t.Fatalf("vouch status without --node: %s", r)
	}
	r = vouch(t, "status", "--node", unreachable)
	if r.code != 1 || !strings.Contains(r.stderr, "no node answered") || !strings.Contains(r.stdout, unreachable) {
		t.Fatalf("vouch status of an unreachable node: %s", r)
	}
}
