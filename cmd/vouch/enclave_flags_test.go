package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnclaveReplicaAddresses(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--raft-advertise", "h:1"}, "need --replica-id"},
		{[]string{"--replica-id", "r1", "--raft-listen", ":0", "--bootstrap"}, "give --raft-advertise"},
		{[]string{"--replica-id", "r1", "--raft-listen", "0.0.0.0:0", "--bootstrap"}, "give --raft-advertise"},
		{[]string{"--replica-id", "r1", "--raft-listen", "127.0.0.1:0", "--raft-advertise", "0.0.0.0:7071", "--bootstrap"}, "--raft-advertise"},
		{[]string{"--replica-id", "r1", "--raft-listen", "127.0.0.1:0", "--raft-advertise", "nohost", "--bootstrap"}, "--raft-advertise"},
		{[]string{"--replica-id", "r1", "--raft-listen", "127.0.0.1:0", "--listen", "0.0.0.0:0", "--bootstrap"}, "give --advertise-url"},
	} {
		r := vouch(t, append([]string{"enclave", "--data", dir}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("want usage error with %q:\n%s", tc.want, r)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a refused start left files in the data directory: %v", ents)
	}
}

func TestReadPCRAllowList(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "pcrs.json")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	h32 := strings.Repeat("ab", 32)
	h48 := strings.Repeat("cd", 48)
	got, err := readPCRAllowList(write(`[{"0":"` + h48 + `","1":"` + h48 + `"},{"0":"` + h32 + `"}]`))
	if err != nil || len(got) != 2 || len(got[0][1]) != 48 || len(got[1][0]) != 32 {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{
		`[]`, `[{}]`, `{"0":"` + h32 + `"}`, `[{"00":"` + h32 + `"}]`, `[{"-1":"` + h32 + `"}]`, `[{"32":"` + h32 + `"}]`,
		`[{"0":"` + strings.ToUpper(h32) + `"}]`, `[{"0":"abcd"}]`, `[{"0":"` + h32 + `","0":"` + h32 + `"}]`, `[{"0":"` + h32 + `"}] x`,
	} {
		if _, err := readPCRAllowList(write(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func FuzzReadPCRAllowList(f *testing.F) {
	f.Add([]byte(`[{"0":"` + strings.Repeat("ab", 32) + `"}]`))
	f.Add([]byte(`[{"01":"00"}]`))
	f.Add([]byte(`[]`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "pcrs.json")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := readPCRAllowList(p)
		if err != nil {
			return
		}
		if len(got) == 0 {
			t.Fatal("accepted an empty list")
		}
		for _, e := range got {
			if len(e) == 0 {
				t.Fatal("accepted an entry with no PCR")
			}
			for i, v := range e {
				if i < 0 || i > 31 || (len(v) != 32 && len(v) != 48 && len(v) != 64) {
					t.Fatalf("accepted PCR%d of %d bytes", i, len(v))
				}
			}
		}
	})
}
