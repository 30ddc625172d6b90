package datadir

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCopyKeepsContentAndModes(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "copy")
	if err := os.MkdirAll(filepath.Join(src, "raft"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "key.pem"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "raft", "raft.db"), []byte("log"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]struct {
		data string
		mode os.FileMode
	}{"key.pem": {"secret", 0o600}, "raft/raft.db": {"log", 0o644}} {
		p := filepath.Join(dst, name)
		b, err := os.ReadFile(p)
		if err != nil || string(b) != want.data {
			t.Fatalf("%s: %q, %v", name, b, err)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != want.mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), want.mode)
		}
	}
}
