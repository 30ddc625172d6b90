package raftstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// The known-answer vector of docs/FORMATS.md ("Encrypted raft log"): one
// entry at index 5 under key 01…01 (32 bytes) and id "cluster-a/replica-1",
// sealed with the all-zero nonce so that the bytes are fixed. Real seals
// use random nonces; opening does not care which nonce was used.
var (
	vectorLog = raft.Log{Index: 5, Term: 2, Type: raft.LogCommand, Data: []byte("hello"),
		Extensions: []byte{0xee}, AppendedAt: time.Date(2026, 12, 6, 23, 0, 0, 123456789, time.UTC)}
	vectorPlain  = "01000000000000000500000000000000020001000000006b15e8f0075bcd15" + "0000000568656c6c6f" + "00000001ee"
	vectorSealed = "01" + "000000000000000000000000" +
		"ca5f215857dc9b1aa06b468ff54ef55cf66239bf8ae4853217f326714e775a3fd1ec8d1b469b9bf733ab573c37232e2a1ea3065be4f8fdb1b0323f8b3f"
)

func TestVector(t *testing.T) {
	plain, err := encodeEntry(&vectorLog)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(plain); got != vectorPlain {
		t.Fatalf("encoding = %s\nwant       %s", got, vectorPlain)
	}

	// Seal independently of the store: HKDF-SHA256, AES-256-GCM, the
	// associated data spelled out byte by byte.
	key := testKey(1)
	sub, err := hkdf.Key(sha256.New, key, nil, "vouch raftstore v1 log", 32)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(sub)
	gcm, _ := cipher.NewGCM(block)
	ad := append([]byte("vouch raftstore v1 log\x00\x00\x00\x00\x13cluster-a/replica-1"), 0, 0, 0, 0, 0, 0, 0, 5)
	nonce := make([]byte, 12)
	sealed := append([]byte{1}, nonce...)
	sealed = gcm.Seal(sealed, nonce, plain, ad)
	if got := hex.EncodeToString(sealed); got != vectorSealed {
		t.Fatalf("sealed = %s\nwant     %s", got, vectorSealed)
	}

	s := openStore(t, t.TempDir()+"/raft.db", key, "cluster-a/replica-1")
	opened, err := unseal(s.logAEAD, sealed, s.logAD(5))
	if err != nil || hex.EncodeToString(opened) != vectorPlain {
		t.Fatalf("the store opens the vector to %x, %v", opened, err)
	}
}
