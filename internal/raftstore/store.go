// Package raftstore is hashicorp/raft's LogStore and StableStore over one
// bbolt file, with every value encrypted and authenticated.
//
// It is the disk under the replicated runtime: a replica's host
// can read and edit the file, so the store must not show it the state nor
// let it change one entry into another.
//
// # Keys
//
// The caller gives a 32-byte key (the replicated runtime derives it from
// the service secret).
// Two AES-256 subkeys come from it with HKDF-SHA256 (crypto/hkdf, no salt):
//
//	log entries    info "vouch raftstore v1 log"
//	stable values  info "vouch raftstore v1 stable"
//
// # Sealing
//
// Each value is sealed with AES-256-GCM under a random 96-bit nonce from
// crypto/rand (cipher.NewGCMWithRandomNonce). A stored value is
//
//	0x01 (format version) || nonce (12) || ciphertext || tag (16)
//
// and its associated data binds it to its place:
//
//	log entry     "vouch raftstore v1 log\x00"    || len(id) (4, BE) || id || index (8, BE)
//	stable value  "vouch raftstore v1 stable\x00" || len(id) (4, BE) || id || key name
//
// where id is the store's identity (for example the cluster and replica ID)
// given to Open, empty if none. The format version byte is checked before
// opening. Random nonces limit one key to about 2^32 seals; a replica that
// writes more than that over its life should be given a fresh key.
//
// # Log entry encoding
//
// The plaintext of a log entry is raft.Log in a fixed binary layout, all
// integers big-endian; nothing else (no gob, no msgpack) is ever decoded:
//
//	version      1 byte, 1
//	index        8 bytes
//	term         8 bytes
//	type         1 byte (raft.LogType)
//	time flag    1 byte: 0 if AppendedAt is the zero time, else 1
//	seconds      8 bytes, AppendedAt.Unix() as two's complement (0 if flag 0)
//	nanoseconds  4 bytes, AppendedAt.Nanosecond(), below 1e9 (0 if flag 0)
//	data         4-byte length, then the bytes
//	extensions   4-byte length, then the bytes
//
// with no trailing bytes. Only this canonical form decodes, and the index
// inside must equal the index the entry is stored under. AppendedAt comes
// back in UTC; empty Data and Extensions come back nil.
//
// bbolt buckets: "logs" maps the 8-byte big-endian index to a sealed entry,
// "stable" maps a key name to a sealed value, and "meta" holds "check", an
// empty stable-keyed value sealed under the name "\x00check" so that Open
// refuses a wrong key or identity at once.
//
// # Errors
//
// A value that does not authenticate, has the wrong format or does not
// decode makes the call fail with an error wrapping ErrTampered that names
// the index or key; nothing panics and no wrong data is returned. raft
// treats such an error from GetLog as a failure of that operation; the
// replicated runtime then stops the replica, which must be re-synced.
//
// A missing log entry is raft.ErrLogNotFound. A missing stable key is
// ErrKeyNotFound, whose message is exactly "not found": raft compares
// err.Error() with that string (api.go, raft.go), and hashicorp/raft-boltdb
// behaves the same way for Get and GetUint64.
//
// # What is protected and what is not
//
// Protected: the confidentiality and integrity of each value, and its
// binding to its index (log) or key name (stable) and to the store's key
// and identity. An edited, truncated or swapped value, or one copied from
// another store, fails with ErrTampered.
//
// Not protected, and not detectable from this file alone: the host may
// restore an older copy of the whole file (rolling back term, vote and log),
// delete entries at either end (the log then looks shorter, or compacted),
// delete entries in the middle (GetLog reports raft.ErrLogNotFound) or
// delete stable keys (they read as not found), and may replace one value
// with an older value sealed for the same index or key. Keys (indexes and
// names) and the file's size and write pattern are visible. Issue 14
// handles rollback with the peers' evidence: the committed state held by a
// majority and the certificates the nodes keep.
package raftstore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// ErrTampered is wrapped by every error about a stored value that does not
// authenticate or does not decode.
var ErrTampered = errors.New("raft store value tampered with")

// ErrKeyNotFound reports a missing stable key. Its message is exactly
// "not found", which raft checks for.
var ErrKeyNotFound = errors.New("not found")

const (
	labelLog    = "vouch raftstore v1 log"
	labelStable = "vouch raftstore v1 stable"
	// sealVersion is the first byte of every stored value.
	sealVersion = 1
	// checkName is the stable key name the check value is sealed under; no
	// raft key starts with a zero byte, and it lives in its own bucket.
	checkName = "\x00check"
)

var (
	bucketLogs   = []byte("logs")
	bucketStable = []byte("stable")
	bucketMeta   = []byte("meta")
	keyCheck     = []byte("check")
)

// Store is a raft.LogStore and raft.StableStore in one bbolt file. It is
// safe for concurrent use.
type Store struct {
	db         *bolt.DB
	logAEAD    cipher.AEAD
	stableAEAD cipher.AEAD
	logPrefix  []byte // associated data before the index
	stPrefix   []byte // associated data before the key name
}

var (
	_ raft.LogStore    = (*Store)(nil)
	_ raft.StableStore = (*Store)(nil)
)

// Open opens or creates the store file at path (mode 0600), sealing under
// key (32 bytes) and binding every value to id, which may be empty. It
// fails with ErrTampered if the file was written under another key or id.
func Open(path string, key []byte, id string) (*Store, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("raft store key is %d bytes, want 32", len(key))
	}
	logAEAD, err := newAEAD(key, labelLog)
	if err != nil {
		return nil, err
	}
	stableAEAD, err := newAEAD(key, labelStable)
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open raft store %s: %w", path, err)
	}
	s := &Store{
		db:         db,
		logAEAD:    logAEAD,
		stableAEAD: stableAEAD,
		logPrefix:  adPrefix(labelLog, id),
		stPrefix:   adPrefix(labelStable, id),
	}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// init creates the buckets and writes or checks the check value.
func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketLogs, bucketStable, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyCheck); v != nil {
			if _, err := s.openStable([]byte(checkName), v); err != nil {
				return fmt.Errorf("%w: check value does not authenticate (wrong key or store id?)", ErrTampered)
			}
			return nil
		}
		return meta.Put(keyCheck, s.sealStable([]byte(checkName), nil))
	})
}

func newAEAD(key []byte, label string) (cipher.AEAD, error) {
	sub, err := hkdf.Key(sha256.New, key, nil, label, 32)
	if err != nil {
		return nil, fmt.Errorf("derive %s key: %w", label, err)
	}
	block, err := aes.NewCipher(sub)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}

func adPrefix(label, id string) []byte {
	b := append([]byte(label), 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(id)))
	return append(b, id...)
}

func (s *Store) logAD(index uint64) []byte {
	return binary.BigEndian.AppendUint64(bytes.Clone(s.logPrefix), index)
}

func (s *Store) stableAD(name []byte) []byte {
	return append(bytes.Clone(s.stPrefix), name...)
}

func seal(aead cipher.AEAD, plain, ad []byte) []byte {
	out := make([]byte, 1, 1+len(plain)+aead.Overhead())
	out[0] = sealVersion
	return aead.Seal(out, nil, plain, ad)
}

// unseal opens a stored value; the error says why without the details of
// the failure, and the caller wraps it in ErrTampered.
func unseal(aead cipher.AEAD, v, ad []byte) ([]byte, error) {
	if len(v) < 1+aead.Overhead() {
		return nil, fmt.Errorf("value of %d bytes is too short", len(v))
	}
	if v[0] != sealVersion {
		return nil, fmt.Errorf("unknown format version %d", v[0])
	}
	plain, err := aead.Open(nil, nil, v[1:], ad)
	if err != nil {
		return nil, errors.New("value does not authenticate")
	}
	return plain, nil
}

func (s *Store) sealStable(name, val []byte) []byte {
	return seal(s.stableAEAD, val, s.stableAD(name))
}

func (s *Store) openStable(name, v []byte) ([]byte, error) {
	return unseal(s.stableAEAD, v, s.stableAD(name))
}

// Close closes the file. Calling it again does nothing.
func (s *Store) Close() error {
	return s.db.Close()
}

func indexKey(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i) }

// edgeIndex returns the first (or last) index in the log, 0 if it is empty.
func (s *Store) edgeIndex(last bool) (uint64, error) {
	var idx uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLogs).Cursor()
		k, _ := c.First()
		if last {
			k, _ = c.Last()
		}
		if k == nil {
			return nil
		}
		if len(k) != 8 {
			return fmt.Errorf("%w: log key of %d bytes", ErrTampered, len(k))
		}
		idx = binary.BigEndian.Uint64(k)
		return nil
	})
	return idx, err
}

// FirstIndex returns the first index written, 0 for no entries.
func (s *Store) FirstIndex() (uint64, error) { return s.edgeIndex(false) }

// LastIndex returns the last index written, 0 for no entries.
func (s *Store) LastIndex() (uint64, error) { return s.edgeIndex(true) }

// GetLog reads the entry at index into log. A missing entry is
// raft.ErrLogNotFound; one that does not authenticate or decode is an
// error wrapping ErrTampered, and log is left unchanged.
func (s *Store) GetLog(index uint64, log *raft.Log) error {
	var sealed []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketLogs).Get(indexKey(index)); v != nil {
			sealed = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if sealed == nil {
		return raft.ErrLogNotFound
	}
	plain, err := unseal(s.logAEAD, sealed, s.logAD(index))
	if err != nil {
		return fmt.Errorf("%w: log entry %d: %v", ErrTampered, index, err)
	}
	var l raft.Log
	if err := decodeEntry(plain, &l); err != nil {
		return fmt.Errorf("%w: log entry %d: %v", ErrTampered, index, err)
	}
	if l.Index != index {
		return fmt.Errorf("%w: log entry %d holds index %d", ErrTampered, index, l.Index)
	}
	*log = l
	return nil
}

// StoreLog stores one entry.
func (s *Store) StoreLog(log *raft.Log) error { return s.StoreLogs([]*raft.Log{log}) }

// StoreLogs stores entries in one transaction, fsynced before it returns.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	sealed := make([][]byte, len(logs))
	for i, l := range logs {
		plain, err := encodeEntry(l)
		if err != nil {
			return err
		}
		sealed[i] = seal(s.logAEAD, plain, s.logAD(l.Index))
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLogs)
		for i, l := range logs {
			if err := b.Put(indexKey(l.Index), sealed[i]); err != nil {
				return fmt.Errorf("store log entry %d: %w", l.Index, err)
			}
		}
		return nil
	})
}

// DeleteRange deletes the entries from min to max, both included.
func (s *Store) DeleteRange(min, max uint64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLogs)
		var keys [][]byte
		c := b.Cursor()
		for k, _ := c.Seek(indexKey(min)); k != nil; k, _ = c.Next() {
			if len(k) != 8 || binary.BigEndian.Uint64(k) > max {
				break
			}
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return fmt.Errorf("delete log entry %d: %w", binary.BigEndian.Uint64(k), err)
			}
		}
		return nil
	})
}

// Set stores val under key.
func (s *Store) Set(key, val []byte) error {
	sealed := s.sealStable(key, val)
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketStable).Put(key, sealed)
	})
}

// Get returns the value of key, ErrKeyNotFound if there is none, or an
// error wrapping ErrTampered.
func (s *Store) Get(key []byte) ([]byte, error) {
	var sealed []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketStable).Get(key); v != nil {
			sealed = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if sealed == nil {
		return nil, ErrKeyNotFound
	}
	plain, err := s.openStable(key, sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: stable key %q: %v", ErrTampered, key, err)
	}
	if plain == nil {
		plain = []byte{}
	}
	return plain, nil
}

// SetUint64 stores val under key as 8 bytes big-endian.
func (s *Store) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns the value of key, ErrKeyNotFound if there is none, or
// an error wrapping ErrTampered (also when the value is not 8 bytes).
func (s *Store) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: stable key %q: %d bytes, want 8", ErrTampered, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
