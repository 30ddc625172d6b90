// Package store is the enclave's durable state, kept in one bbolt file.
//
// Every change is one bbolt transaction, fsynced before it returns, so a
// deploy that fails or a process killed with SIGKILL leaves either the whole
// change or none of it. Records are JSON inside bbolt buckets:
//
//	meta        "schema" → 1, "seq_ceiling" → uint64 (8 bytes big-endian)
//	functions   id → function record (JSON)
//	bundles     id → canonical bundle encoding
//	revocations jti → expiry (Unix seconds, 8 bytes big-endian)
//	state/<id>     per-function durable key-value state (the guest's state_*)
//	counters/<id>  per-function counters (8 bytes big-endian each)
package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrNotFound reports a missing function.
var ErrNotFound = errors.New("not found")

// ErrCorrupt is wrapped by errors about records the store cannot decode.
var ErrCorrupt = errors.New("corrupt store record")

const schemaVersion = 1

var (
	bucketMeta        = []byte("meta")
	bucketFunctions   = []byte("functions")
	bucketBundles     = []byte("bundles")
	bucketRevocations = []byte("revocations")
	keySchema         = []byte("schema")
	keySeqCeiling     = []byte("seq_ceiling")
)

// Store is the durable state. It is safe for concurrent use.
type Store struct {
	db *bolt.DB
}

// Function is a deployed function's record.
type Function struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Checksum  string    `json:"checksum"`
	CreatedAt time.Time `json:"created_at"`
	Size      int       `json:"size"`
}

// Open opens or creates the store file at path (mode 0600).
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s: another process holds it (is another vouch enclave using this --data directory?)", path)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketFunctions, bucketBundles, bucketRevocations} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keySchema); v != nil {
			if len(v) != 8 || binary.BigEndian.Uint64(v) != schemaVersion {
				return fmt.Errorf("%s has store schema %x; this vouch understands schema %d", path, v, schemaVersion)
			}
			return nil
		}
		return meta.Put(keySchema, u64(schemaVersion))
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// DB returns the underlying database, for packages that keep their own
// buckets in the same file.
func (s *Store) DB() *bolt.DB { return s.db }

// PutFunction stores a function and its bundle in one transaction.
func (s *Store) PutFunction(f *Function, encodedBundle []byte) error {
	rec, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		fb := tx.Bucket(bucketFunctions)
		if fb.Get([]byte(f.ID)) != nil {
			return fmt.Errorf("function %s already exists", f.ID)
		}
		if err := fb.Put([]byte(f.ID), rec); err != nil {
			return err
		}
		if putFunctionHook != nil {
			if err := putFunctionHook(); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketBundles).Put([]byte(f.ID), encodedBundle)
	})
}

// putFunctionHook, set by tests, runs inside PutFunction's transaction
// between its two writes; an error aborts the transaction there.
var putFunctionHook func() error

// Function returns a function's record.
func (s *Store) Function(id string) (*Function, error) {
	var f *Function
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketFunctions).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		var err error
		f, err = decodeFunction(id, v)
		return err
	})
	return f, err
}

// Bundle returns a function's canonical bundle encoding.
func (s *Store) Bundle(id string) ([]byte, error) {
	var b []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketBundles).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		b = append([]byte(nil), v...)
		return nil
	})
	return b, err
}

// Functions lists every function, ordered by ID.
func (s *Store) Functions() ([]*Function, error) {
	var out []*Function
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFunctions).ForEach(func(k, v []byte) error {
			f, err := decodeFunction(string(k), v)
			if err != nil {
				return err
			}
			out = append(out, f)
			return nil
		})
	})
	return out, err
}

// DeleteFunction removes a function, its bundle and its state.
func (s *Store) DeleteFunction(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketFunctions).Get([]byte(id)) == nil {
			return ErrNotFound
		}
		if err := tx.Bucket(bucketFunctions).Delete([]byte(id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketBundles).Delete([]byte(id)); err != nil {
			return err
		}
		for _, b := range [][]byte{stateBucket(id), counterBucket(id)} {
			if tx.Bucket(b) != nil {
				if err := tx.DeleteBucket(b); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func stateBucket(functionID string) []byte   { return []byte("state/" + functionID) }
func counterBucket(functionID string) []byte { return []byte("counters/" + functionID) }

// StateGet returns a function's durable state value for key.
func (s *Store) StateGet(functionID string, key []byte) ([]byte, bool, error) {
	var v []byte
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(stateBucket(functionID)); b != nil {
			if got := b.Get(key); got != nil {
				v, ok = append([]byte(nil), got...), true
			}
		}
		return nil
	})
	return v, ok, err
}

// Counter returns a function's counter (0 if it was never incremented).
func (s *Store) Counter(functionID string, name []byte) (int64, error) {
	var v int64
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(counterBucket(functionID)); b != nil {
			if got := b.Get(name); len(got) == 8 {
				v = int64(binary.BigEndian.Uint64(got))
			} else if got != nil {
				return fmt.Errorf("%w: counter %q of function %s", ErrCorrupt, name, functionID)
			}
		}
		return nil
	})
	return v, err
}

// StateWrite is one durable write: Value nil deletes Key.
type StateWrite struct {
	Key, Value []byte
}

// CommitState applies an invocation's durable writes and counter values in
// one transaction. A counter never goes down: committing a lower value than
// the stored one is an error.
func (s *Store) CommitState(functionID string, writes []StateWrite, counters map[string]int64) error {
	if len(writes) == 0 && len(counters) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketFunctions).Get([]byte(functionID)) == nil {
			return ErrNotFound // deleted meanwhile: keep nothing
		}
		if len(writes) > 0 {
			b, err := tx.CreateBucketIfNotExists(stateBucket(functionID))
			if err != nil {
				return err
			}
			for _, w := range writes {
				if w.Value == nil {
					err = b.Delete(w.Key)
				} else {
					err = b.Put(w.Key, w.Value)
				}
				if err != nil {
					return err
				}
			}
		}
		if len(counters) > 0 {
			b, err := tx.CreateBucketIfNotExists(counterBucket(functionID))
			if err != nil {
				return err
			}
			for name, v := range counters {
				if old := b.Get([]byte(name)); len(old) == 8 && int64(binary.BigEndian.Uint64(old)) >= v {
					return fmt.Errorf("counter %q of function %s would go from %d to %d", name, functionID, int64(binary.BigEndian.Uint64(old)), v)
				}
				if err := b.Put([]byte(name), u64(uint64(v))); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func decodeFunction(id string, v []byte) (*Function, error) {
	var f Function
	if err := json.Unmarshal(v, &f); err != nil || f.ID != id {
		return nil, fmt.Errorf("%w: function %s", ErrCorrupt, id)
	}
	return &f, nil
}

// SeqCeiling returns the durable upper bound of receipt sequence numbers
// handed out so far (0 on a new store).
func (s *Store) SeqCeiling() (uint64, error) {
	var c uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keySeqCeiling)
		if v == nil {
			return nil
		}
		if len(v) != 8 {
			return fmt.Errorf("%w: seq_ceiling", ErrCorrupt)
		}
		c = binary.BigEndian.Uint64(v)
		return nil
	})
	return c, err
}

// RaiseSeqCeiling durably raises the sequence ceiling to c. A ceiling never
// goes down.
func (s *Store) RaiseSeqCeiling(c uint64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keySeqCeiling); len(v) == 8 && binary.BigEndian.Uint64(v) >= c {
			return nil
		}
		return meta.Put(keySeqCeiling, u64(c))
	})
}

// Revoke records that the token with ID jti is revoked until it expires.
func (s *Store) Revoke(jti string, expires time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRevocations).Put([]byte(jti), u64(uint64(expires.Unix())))
	})
}

// Revoked reports whether the token with ID jti was revoked.
func (s *Store) Revoked(jti string) (bool, error) {
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket(bucketRevocations).Get([]byte(jti)) != nil
		return nil
	})
	return found, err
}

// PruneRevocations forgets revocations of tokens that expired before now:
// such tokens are refused anyway.
func (s *Store) PruneRevocations(now time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRevocations).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < now.Unix() {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	return n, err
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}
