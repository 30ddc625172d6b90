package secretfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestCreateAndRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := Create(path, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", fi.Mode().Perm())
	}
	if err := Create(path, []byte("other")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create = %v, want fs.ErrExist", err)
	}
	got, err := Read(path, 100)
	if err != nil || string(got) != "secret" {
		t.Fatalf("Read = %q, %v", got, err)
	}
	if _, err := Read(path, 3); err == nil {
		t.Fatal("Read accepted a file over maxLen")
	}
	os.Chmod(path, 0o644)
	if _, err := Read(path, 100); !errors.Is(err, ErrInsecure) {
		t.Fatalf("Read of a 0644 file = %v, want ErrInsecure", err)
	}
	if _, err := Read(filepath.Dir(path), 100); err == nil {
		t.Fatal("Read accepted a directory")
	}
	if _, err := Read(filepath.Join(t.TempDir(), "missing"), 100); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read of a missing file = %v", err)
	}
}

func TestLoadOrCreateRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	var wg sync.WaitGroup
	results := make([]string, 8)
	created := make([]bool, 8)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			data, c, err := LoadOrCreate(path, 100, func() ([]byte, error) { return []byte{byte('a' + i)}, nil })
			if err != nil {
				t.Error(err)
			}
			results[i], created[i] = string(data), c
		}(i)
	}
	wg.Wait()
	n := 0
	for i := range results {
		if results[i] != results[0] {
			t.Fatalf("processes disagree on the secret: %q", results)
		}
		if created[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d creators, want 1", n)
	}
}
