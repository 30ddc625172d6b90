package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func fn(id string) *Function {
	return &Function{ID: id, Name: "n-" + id, Checksum: strings.Repeat("ab", 32), CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Size: 3}
}

func TestFunctionsRoundTripAndSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vouch.db")
	s := open(t, path)
	for _, id := range []string{"b", "a"} {
		if err := s.PutFunction(fn(id), []byte("bundle-"+id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutFunction(fn("a"), []byte("other")); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second put of a: %v", err)
	}
	s.Close()
	s = open(t, path)
	fns, err := s.Functions()
	if err != nil || len(fns) != 2 || fns[0].ID != "a" || fns[1].ID != "b" || *fns[0] != *fn("a") {
		t.Fatalf("functions after reopen: %+v, %v", fns, err)
	}
	if b, err := s.Bundle("a"); err != nil || string(b) != "bundle-a" {
		t.Fatalf("bundle a: %q, %v (the refused second put must not replace it)", b, err)
	}
	if err := s.DeleteFunction("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Function("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted function: %v", err)
	}
	if _, err := s.Bundle("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted bundle: %v", err)
	}
	if err := s.DeleteFunction("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

// A PutFunction that fails between its two writes leaves neither.
func TestPutFunctionIsAtomic(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "vouch.db"))
	boom := errors.New("crash between the record and the bundle")
	putFunctionHook = func() error { return boom }
	err := s.PutFunction(fn("x"), []byte("bundle"))
	putFunctionHook = nil
	if !errors.Is(err, boom) {
		t.Fatalf("error = %v", err)
	}
	if _, err := s.Function("x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("half-stored record: %v", err)
	}
	if fns, err := s.Functions(); err != nil || len(fns) != 0 {
		t.Fatalf("functions: %v, %v", fns, err)
	}
	if _, err := s.Bundle("x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("half-stored bundle: %v", err)
	}
	// And the same ID can be stored afterwards.
	if err := s.PutFunction(fn("x"), []byte("bundle")); err != nil {
		t.Fatal(err)
	}
}

func TestSchemaMismatchIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vouch.db")
	s := open(t, path)
	s.Close()
	for _, v := range [][]byte{u64(2), []byte("1")} {
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, v) }); err != nil {
			t.Fatal(err)
		}
		db.Close()
		_, err = Open(path)
		if err == nil || !strings.Contains(err.Error(), "store schema") || !strings.Contains(err.Error(), "understands schema 1") {
			t.Fatalf("schema %x: %v", v, err)
		}
	}
}

func TestNotAStoreIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vouch.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a bbolt file "), 512), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path); err == nil {
		s.Close()
		t.Fatal("a file of junk opened as a store")
	}
}

// Corrupt records give ErrCorrupt, naming what is corrupt, and do not
// crash; the rest of the store stays readable.
func TestCorruptRecords(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "vouch.db"))
	if err := s.PutFunction(fn("good"), []byte("bundle")); err != nil {
		t.Fatal(err)
	}
	corrupt := func(bucket, key, value []byte) {
		t.Helper()
		err := s.DB().Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			return b.Put(key, value)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, rec := range map[string][]byte{
		"junk":       []byte("{not json"),
		"other id":   []byte(`{"id":"someone-else"}`),
		"wrong type": []byte(`{"id":"bad","size":"big"}`),
	} {
		corrupt(bucketFunctions, []byte("bad"), rec)
		if _, err := s.Function("bad"); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "bad") {
			t.Errorf("%s: Function = %v", name, err)
		}
		if _, err := s.Functions(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Functions = %v", name, err)
		}
	}
	if f, err := s.Function("good"); err != nil || f.ID != "good" {
		t.Fatalf("good record next to a corrupt one: %v", err)
	}

	corrupt(counterBucket("good"), []byte("n"), []byte{1, 2, 3})
	if _, err := s.Counter("good", []byte("n")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short counter: %v", err)
	}
	corrupt(bucketMeta, keySeqCeiling, []byte{1})
	if _, err := s.SeqCeiling(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short seq ceiling: %v", err)
	}
}

func TestSeqCeilingOnlyGrows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vouch.db")
	s := open(t, path)
	if c, err := s.SeqCeiling(); err != nil || c != 0 {
		t.Fatalf("new store: %d, %v", c, err)
	}
	for _, c := range []uint64{100, 50, 100, 0} {
		if err := s.RaiseSeqCeiling(c); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.SeqCeiling(); got != 100 {
			t.Fatalf("after RaiseSeqCeiling(%d): %d, want 100", c, got)
		}
	}
	if err := s.RaiseSeqCeiling(1<<64 - 1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path)
	if got, _ := s.SeqCeiling(); got != 1<<64-1 {
		t.Fatalf("after reopen: %d", got)
	}
}

func TestCountersOnlyGrowAndCommitsAreAtomic(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "vouch.db"))
	if err := s.PutFunction(fn("f"), []byte("bundle")); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitState("f", []StateWrite{{Key: []byte("k"), Value: []byte("v1")}}, map[string]int64{"n": 5}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int64{5, 4, -1} {
		err := s.CommitState("f", []StateWrite{{Key: []byte("k"), Value: []byte("v2")}}, map[string]int64{"n": v})
		if err == nil || !strings.Contains(err.Error(), "would go from 5") {
			t.Fatalf("counter 5 -> %d: %v", v, err)
		}
	}
	// The refused commits wrote nothing, not even their state.
	if n, _ := s.Counter("f", []byte("n")); n != 5 {
		t.Fatalf("counter = %d", n)
	}
	if v, ok, _ := s.StateGet("f", []byte("k")); !ok || string(v) != "v1" {
		t.Fatalf("state = %q, %v", v, ok)
	}
	// A delete, and a commit for a deleted function, which keeps nothing.
	if err := s.CommitState("f", []StateWrite{{Key: []byte("k")}}, map[string]int64{"n": 6}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.StateGet("f", []byte("k")); ok {
		t.Fatal("deleted key still there")
	}
	if err := s.DeleteFunction("f"); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitState("f", nil, map[string]int64{"n": 7}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("commit for a deleted function: %v", err)
	}
	if n, _ := s.Counter("f", []byte("n")); n != 0 {
		t.Fatalf("a deleted function's counter = %d", n)
	}
}

func TestRevocationsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vouch.db")
	s := open(t, path)
	now := time.Unix(1_800_000_000, 0)
	if err := s.Revoke("old", now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke("live", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path)
	for _, jti := range []string{"old", "live"} {
		if ok, err := s.Revoked(jti); err != nil || !ok {
			t.Fatalf("%s after reopen: %v, %v", jti, ok, err)
		}
	}
	if ok, _ := s.Revoked("never"); ok {
		t.Fatal("a token never revoked is revoked")
	}
	// Pruning forgets only revocations of tokens that expired anyway.
	if n, err := s.PruneRevocations(now); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	if ok, _ := s.Revoked("old"); ok {
		t.Fatal("expired revocation kept")
	}
	if ok, _ := s.Revoked("live"); !ok {
		t.Fatal("live revocation pruned")
	}
	var raw []byte
	s.DB().View(func(tx *bolt.Tx) error {
		raw = append(raw, tx.Bucket(bucketRevocations).Get([]byte("live"))...)
		return nil
	})
	if len(raw) != 8 || int64(binary.BigEndian.Uint64(raw)) != now.Add(time.Hour).Unix() {
		t.Fatalf("revocation record % x", raw)
	}
}

func TestOpenTwiceIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vouch.db")
	open(t, path)
	if s, err := Open(path); err == nil {
		s.Close()
		t.Fatal("a second Open of a held store succeeded")
	} else if !strings.Contains(err.Error(), "another process holds it") {
		t.Fatalf("error = %v", err)
	}
}

// FuzzDecodeFunction: a stored record, whatever its bytes, decodes to a
// function with the ID it is stored under or to ErrCorrupt; it never
// panics.
func FuzzDecodeFunction(f *testing.F) {
	f.Add("a", []byte(`{"id":"a","name":"n","checksum":"00","created_at":"2026-01-02T03:04:05Z","size":3}`))
	f.Add("a", []byte(`{"id":"b"}`))
	f.Add("", []byte(`null`))
	f.Fuzz(func(t *testing.T, id string, rec []byte) {
		fn, err := decodeFunction(id, rec)
		switch {
		case err != nil && !errors.Is(err, ErrCorrupt):
			t.Fatalf("error %v is not ErrCorrupt", err)
		case err == nil && fn.ID != id:
			t.Fatalf("record under %q decoded to ID %q", id, fn.ID)
		}
	})
}
