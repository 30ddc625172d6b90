package replica

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"

	"github.com/vouch-dev/vouch/internal/raftstore"
)

const (
	snapshotInfo    = "vouch replica snapshot v1"
	snapshotVersion = 1
	// snapshotOverhead is what sealing adds: version, nonce and tag.
	snapshotOverhead = 1 + 12 + 16
	// maxSnapshot bounds a snapshot held in memory (sealed or not).
	maxSnapshot = 1 << 30
)

// snapshotAEAD returns the AEAD that seals snapshots under key.
func snapshotAEAD(storageKey []byte) (cipher.AEAD, error) {
	sub, err := hkdf.Key(sha256.New, storageKey, nil, snapshotInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("derive snapshot key: %w", err)
	}
	block, err := aes.NewCipher(sub)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}

// snapshotAD is the associated data of a snapshot (package doc).
func snapshotAD(storeID string, m *raft.SnapshotMeta) []byte {
	b := append([]byte(snapshotInfo), 0)
	b = appendString(b, storeID)
	b = appendString(b, m.ID)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Version))
	b = binary.BigEndian.AppendUint64(b, m.Index)
	b = binary.BigEndian.AppendUint64(b, m.Term)
	b = binary.BigEndian.AppendUint64(b, m.ConfigurationIndex)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Configuration.Servers)))
	for _, s := range m.Configuration.Servers {
		b = append(b, byte(s.Suffrage))
		b = appendString(b, string(s.ID))
		b = appendString(b, string(s.Address))
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func sealSnapshot(aead cipher.AEAD, plain, ad []byte) []byte {
	out := make([]byte, 1, snapshotOverhead+len(plain))
	out[0] = snapshotVersion
	return aead.Seal(out, nil, plain, ad)
}

// openSnapshot authenticates and decrypts a sealed snapshot. Every failure
// wraps raftstore.ErrTampered: only a forger makes one.
func openSnapshot(aead cipher.AEAD, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < snapshotOverhead {
		return nil, fmt.Errorf("%w: snapshot of %d bytes is too short", raftstore.ErrTampered, len(sealed))
	}
	if sealed[0] != snapshotVersion {
		return nil, fmt.Errorf("%w: snapshot format version %d, want %d", raftstore.ErrTampered, sealed[0], snapshotVersion)
	}
	plain, err := aead.Open(nil, nil, sealed[1:], ad)
	if err != nil {
		return nil, fmt.Errorf("%w: snapshot does not authenticate", raftstore.ErrTampered)
	}
	return plain, nil
}

// sealedSnapshots is a raft.SnapshotStore that seals what it stores in an
// inner file snapshot store (package doc, "Snapshots").
type sealedSnapshots struct {
	inner   raft.SnapshotStore
	aead    cipher.AEAD
	storeID string
	tamper  func(error) // records an authentication failure
}

var _ raft.SnapshotStore = (*sealedSnapshots)(nil)

func (s *sealedSnapshots) Create(version raft.SnapshotVersion, index, term uint64, conf raft.Configuration, confIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	if version != 1 {
		return nil, fmt.Errorf("replica: snapshot version %d unsupported", version)
	}
	sink, err := s.inner.Create(version, index, term, conf, confIndex, trans)
	if err != nil {
		return nil, err
	}
	meta := raft.SnapshotMeta{ID: sink.ID(), Version: version, Index: index, Term: term, Configuration: conf, ConfigurationIndex: confIndex}
	return &sealingSink{inner: sink, s: s, ad: snapshotAD(s.storeID, &meta)}, nil
}

// List reports the inner store's snapshots with their plaintext sizes. Their
// metadata is authenticated when raft opens them: it restores only a
// snapshot that Open accepts.
func (s *sealedSnapshots) List() ([]*raft.SnapshotMeta, error) {
	metas, err := s.inner.List()
	if err != nil {
		return nil, err
	}
	out := make([]*raft.SnapshotMeta, len(metas))
	for i, m := range metas {
		c := *m
		c.Size = max(c.Size-snapshotOverhead, 0)
		out[i] = &c
	}
	return out, nil
}

func (s *sealedSnapshots) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.inner.Open(id)
	if err != nil {
		return nil, nil, err
	}
	sealed, err := io.ReadAll(io.LimitReader(rc, maxSnapshot+snapshotOverhead+1))
	rc.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("replica: read snapshot %s: %w", id, err)
	}
	plain, err := openSnapshot(s.aead, sealed, snapshotAD(s.storeID, meta))
	if err != nil {
		err = fmt.Errorf("replica: snapshot %s: %w", id, err)
		s.tamper(err)
		return nil, nil, err
	}
	c := *meta
	c.Size = int64(len(plain))
	return &c, io.NopCloser(bytes.NewReader(plain)), nil
}

// sealingSink buffers a snapshot and writes it sealed on Close.
type sealingSink struct {
	inner raft.SnapshotSink
	s     *sealedSnapshots
	ad    []byte
	buf   bytes.Buffer
}

func (k *sealingSink) ID() string { return k.inner.ID() }

func (k *sealingSink) Write(p []byte) (int, error) {
	if k.buf.Len()+len(p) > maxSnapshot {
		return 0, errors.New("replica: snapshot larger than 1 GiB")
	}
	return k.buf.Write(p)
}

func (k *sealingSink) Close() error {
	sealed := sealSnapshot(k.s.aead, k.buf.Bytes(), k.ad)
	k.buf = bytes.Buffer{}
	if _, err := k.inner.Write(sealed); err != nil {
		k.inner.Cancel()
		return err
	}
	return k.inner.Close()
}

func (k *sealingSink) Cancel() error {
	k.buf = bytes.Buffer{}
	return k.inner.Cancel()
}
