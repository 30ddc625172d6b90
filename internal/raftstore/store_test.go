package raftstore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func openStore(t *testing.T, path string, key []byte, id string) *Store {
	t.Helper()
	s, err := Open(path, key, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func entry(i uint64) *raft.Log {
	return &raft.Log{
		Index:      i,
		Term:       i/3 + 1,
		Type:       raft.LogCommand,
		Data:       []byte{byte(i), 'd'},
		Extensions: []byte("ext"),
		AppendedAt: time.Date(2026, 12, 6, 23, 0, 0, int(i), time.UTC),
	}
}

func sameLog(a, b *raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Extensions, b.Extensions) &&
		a.AppendedAt.Equal(b.AppendedAt)
}

func mustStore(t *testing.T, s *Store, logs ...*raft.Log) {
	t.Helper()
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
}

func checkRange(t *testing.T, s *Store, first, last uint64) {
	t.Helper()
	f, err := s.FirstIndex()
	if err != nil || f != first {
		t.Fatalf("FirstIndex = %d, %v; want %d", f, err, first)
	}
	l, err := s.LastIndex()
	if err != nil || l != last {
		t.Fatalf("LastIndex = %d, %v; want %d", l, err, last)
	}
}

func TestLogsRoundTripRangesAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := openStore(t, path, testKey(1), "cluster-a/replica-1")
	checkRange(t, s, 0, 0)
	var got raft.Log
	if err := s.GetLog(1, &got); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog on an empty store: %v", err)
	}

	// One entry with everything set, one with nothing set, and a batch.
	full := &raft.Log{Index: 1, Term: 7, Type: raft.LogConfiguration, Data: []byte("config"),
		Extensions: []byte{0, 1, 2}, AppendedAt: time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.FixedZone("x", 3600))}
	if err := s.StoreLog(full); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(&raft.Log{Index: 2}); err != nil {
		t.Fatal(err)
	}
	for i := uint64(3); i <= 10; i++ {
		mustStore(t, s, entry(i))
	}
	checkRange(t, s, 1, 10)
	for _, want := range []*raft.Log{full, {Index: 2}, entry(3), entry(10)} {
		if err := s.GetLog(want.Index, &got); err != nil || !sameLog(&got, want) {
			t.Fatalf("GetLog(%d) = %+v, %v; want %+v", want.Index, got, err, want)
		}
	}
	if err := s.GetLog(2, &got); err != nil || got.Data != nil || got.Extensions != nil || !got.AppendedAt.IsZero() {
		t.Fatalf("empty entry: %+v, %v", got, err)
	}

	// Compaction from the front, a conflict truncation at the back.
	if err := s.DeleteRange(1, 4); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 5, 10)
	if err := s.DeleteRange(8, 10); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 5, 7)
	if err := s.GetLog(4, &got); err != raft.ErrLogNotFound {
		t.Fatalf("deleted entry 4: %v", err)
	}
	if err := s.DeleteRange(100, 200); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 5, 7)

	if err := s.SetUint64([]byte("CurrentTerm"), 42); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node-2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode: %v, %v", fi.Mode(), err)
	}

	s = openStore(t, path, testKey(1), "cluster-a/replica-1")
	checkRange(t, s, 5, 7)
	for i := uint64(5); i <= 7; i++ {
		if err := s.GetLog(i, &got); err != nil || !sameLog(&got, entry(i)) {
			t.Fatalf("GetLog(%d) after reopen = %+v, %v", i, got, err)
		}
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
		t.Fatalf("CurrentTerm after reopen = %d, %v", v, err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "node-2" {
		t.Fatalf("LastVoteCand after reopen = %q, %v", v, err)
	}
}

func TestStableSemantics(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "raft.db"), testKey(1), "")
	// raft compares err.Error() with "not found" (api.go, raft.go).
	if _, err := s.Get([]byte("missing")); err == nil || err.Error() != "not found" || !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Get of a missing key: %v", err)
	}
	if _, err := s.GetUint64([]byte("missing")); err == nil || err.Error() != "not found" {
		t.Fatalf("GetUint64 of a missing key: %v", err)
	}
	if err := s.Set([]byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get([]byte("empty")); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("empty value: %q (nil %v), %v", v, v == nil, err)
	}
	if _, err := s.GetUint64([]byte("empty")); !errors.Is(err, ErrTampered) {
		t.Fatalf("GetUint64 of a 0-byte value: %v", err)
	}
	if err := s.SetUint64([]byte("n"), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("n"), 1<<63+5); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetUint64([]byte("n")); err != nil || v != 1<<63+5 {
		t.Fatalf("GetUint64 = %d, %v", v, err)
	}
}

func TestOpenRefusesWrongKeyOrID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s, err := Open(path, testKey(1), "a")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path, testKey(2), "a"); !errors.Is(err, ErrTampered) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := Open(path, testKey(1), "b"); !errors.Is(err, ErrTampered) {
		t.Fatalf("wrong id: %v", err)
	}
	if _, err := Open(path, testKey(1)[:16], "a"); err == nil {
		t.Fatal("16-byte key accepted")
	}
	s, err = Open(path, testKey(1), "a")
	if err != nil {
		t.Fatalf("right key after refusals: %v", err)
	}
	s.Close()
}

func TestValuesAreNotInTheClear(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := openStore(t, path, testKey(1), "")
	secret := []byte("SECRET-COMMAND-PAYLOAD")
	mustStore(t, s, &raft.Log{Index: 1, Term: 1, Data: secret})
	if err := s.Set([]byte("k"), []byte("SECRET-STABLE-VALUE")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"SECRET-COMMAND-PAYLOAD", "SECRET-STABLE-VALUE"} {
		if bytes.Contains(raw, []byte(w)) {
			t.Errorf("%s is in the file in the clear", w)
		}
	}
}

// editRaw runs f on the closed store file's buckets, as a host would.
func editRaw(t *testing.T, path string, f func(logs, stable *bolt.Bucket)) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		f(tx.Bucket(bucketLogs), tx.Bucket(bucketStable))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func rawGet(t *testing.T, path string, bucket, key []byte) []byte {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v []byte
	db.View(func(tx *bolt.Tx) error {
		v = bytes.Clone(tx.Bucket(bucket).Get(key))
		return nil
	})
	if v == nil {
		t.Fatalf("no %s/%q in %s", bucket, key, path)
	}
	return v
}

func get(t *testing.T, b *bolt.Bucket, k []byte) []byte {
	t.Helper()
	v := bytes.Clone(b.Get(k))
	if v == nil {
		t.Fatalf("no value for %q", k)
	}
	return v
}

func put(t *testing.T, b *bolt.Bucket, k, v []byte) {
	t.Helper()
	if err := b.Put(k, v); err != nil {
		t.Fatal(err)
	}
}

func TestTamperedValuesFail(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "other.db")
	o := openStore(t, other, testKey(9), "cluster-a/replica-1")
	mustStore(t, o, entry(1), entry(2), entry(3))
	o.SetUint64([]byte("CurrentTerm"), 99)
	o.Close()
	sameKeyOtherID := filepath.Join(dir, "sibling.db")
	o = openStore(t, sameKeyOtherID, testKey(1), "cluster-a/replica-2")
	mustStore(t, o, entry(1), entry(2), entry(3))
	o.Close()
	otherEntry := rawGet(t, other, bucketLogs, indexKey(2))
	otherTerm := rawGet(t, other, bucketStable, []byte("CurrentTerm"))
	siblingEntry := rawGet(t, sameKeyOtherID, bucketLogs, indexKey(2))

	cases := []struct {
		name  string
		edit  func(t *testing.T, path string, logs, stable *bolt.Bucket)
		index uint64 // the log entry that must fail, 0 for none
		key   string // the stable key that must fail, "" for none
	}{
		{"flip a byte of an entry", func(t *testing.T, path string, logs, _ *bolt.Bucket) {
			v := get(t, logs, indexKey(2))
			v[len(v)/2] ^= 0x40
			put(t, logs, indexKey(2), v)
		}, 2, ""},
		{"flip the version byte", func(t *testing.T, path string, logs, _ *bolt.Bucket) {
			v := get(t, logs, indexKey(2))
			v[0] ^= 3
			put(t, logs, indexKey(2), v)
		}, 2, ""},
		{"swap two entries", func(t *testing.T, path string, logs, _ *bolt.Bucket) {
			a, b := get(t, logs, indexKey(1)), get(t, logs, indexKey(3))
			put(t, logs, indexKey(1), b)
			put(t, logs, indexKey(3), a)
		}, 3, ""},
		{"copy an entry from a store with another key", func(t *testing.T, _ string, logs, _ *bolt.Bucket) {
			put(t, logs, indexKey(2), otherEntry)
		}, 2, ""},
		{"copy an entry from a store with another id", func(t *testing.T, _ string, logs, _ *bolt.Bucket) {
			put(t, logs, indexKey(2), siblingEntry)
		}, 2, ""},
		{"truncate an entry", func(t *testing.T, path string, logs, _ *bolt.Bucket) {
			v := get(t, logs, indexKey(2))
			put(t, logs, indexKey(2), v[:len(v)-1])
		}, 2, ""},
		{"truncate an entry to nothing", func(t *testing.T, path string, logs, _ *bolt.Bucket) {
			put(t, logs, indexKey(2), []byte{})
		}, 2, ""},
		{"truncate an entry to its version byte", func(t *testing.T, path string, logs, _ *bolt.Bucket) {
			put(t, logs, indexKey(2), []byte{sealVersion})
		}, 2, ""},
		{"flip a byte of the term", func(t *testing.T, path string, _, stable *bolt.Bucket) {
			v := get(t, stable, []byte("CurrentTerm"))
			v[len(v)-1] ^= 1
			put(t, stable, []byte("CurrentTerm"), v)
		}, 0, "CurrentTerm"},
		{"move a stable value to another key", func(t *testing.T, path string, _, stable *bolt.Bucket) {
			put(t, stable, []byte("CurrentTerm"), get(t, stable, []byte("LastVoteTerm")))
		}, 0, "CurrentTerm"},
		{"copy the term from a store with another key", func(t *testing.T, path string, _, stable *bolt.Bucket) {
			put(t, stable, []byte("CurrentTerm"), otherTerm)
		}, 0, "CurrentTerm"},
		{"truncate the term", func(t *testing.T, path string, _, stable *bolt.Bucket) {
			v := get(t, stable, []byte("CurrentTerm"))
			put(t, stable, []byte("CurrentTerm"), v[:20])
		}, 0, "CurrentTerm"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "raft.db")
			s := openStore(t, path, testKey(1), "cluster-a/replica-1")
			mustStore(t, s, entry(1), entry(2), entry(3))
			s.SetUint64([]byte("CurrentTerm"), 5)
			s.SetUint64([]byte("LastVoteTerm"), 4)
			s.Close()
			editRaw(t, path, func(logs, stable *bolt.Bucket) { c.edit(t, path, logs, stable) })

			s = openStore(t, path, testKey(1), "cluster-a/replica-1")
			for i := uint64(1); i <= 3; i++ {
				got := raft.Log{Index: 77, Data: []byte("untouched")}
				err := s.GetLog(i, &got)
				switch {
				case i == c.index || (c.name == "swap two entries" && i == 1):
					if !errors.Is(err, ErrTampered) {
						t.Fatalf("GetLog(%d) = %v, want ErrTampered", i, err)
					}
					if got.Index != 77 || string(got.Data) != "untouched" {
						t.Fatalf("GetLog(%d) failed but wrote %+v", i, got)
					}
				case err != nil || !sameLog(&got, entry(i)):
					t.Fatalf("untouched GetLog(%d) = %+v, %v", i, got, err)
				}
			}
			_, err := s.GetUint64([]byte("CurrentTerm"))
			if c.key == "CurrentTerm" {
				if !errors.Is(err, ErrTampered) {
					t.Fatalf("GetUint64(CurrentTerm) = %v, want ErrTampered", err)
				}
			} else if err != nil {
				t.Fatalf("untouched CurrentTerm: %v", err)
			}
		})
	}
}

func TestMalformedLogKeyIsTampering(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := openStore(t, path, testKey(1), "")
	mustStore(t, s, entry(1))
	s.Close()
	editRaw(t, path, func(logs, _ *bolt.Bucket) { put(t, logs, []byte{0xff}, []byte("x")) })
	s = openStore(t, path, testKey(1), "")
	if _, err := s.LastIndex(); !errors.Is(err, ErrTampered) {
		t.Fatalf("LastIndex with a 1-byte key: %v", err)
	}
	if f, err := s.FirstIndex(); err != nil || f != 1 {
		t.Fatalf("FirstIndex = %d, %v", f, err)
	}
}
