package cluster_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/vouch-dev/vouch/cluster"
)

// Known answers for docs/FORMATS.md, "Cluster configuration" and "Views",
// each checked against an encoding written from the document alone.

// rfc8032Seed is the secret key of RFC 8032 section 7.1, TEST 1.
const rfc8032Seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"

func testKey(t *testing.T, seedHex string) ed25519.PrivateKey {
	t.Helper()
	seed, err := hex.DecodeString(seedHex)
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// enc builds canonical bytes the way FORMATS.md describes them.
type enc struct{ b []byte }

func (e *enc) str(s string) *enc { return e.bytes([]byte(s)) }
func (e *enc) u64(v uint64) *enc { e.b = binary.BigEndian.AppendUint64(e.b, v); return e }
func (e *enc) i64(v int64) *enc  { return e.u64(uint64(v)) }
func (e *enc) bytes(p []byte) *enc {
	e.b = binary.BigEndian.AppendUint32(e.b, uint32(len(p)))
	e.b = append(e.b, p...)
	return e
}

func TestConfigVectors(t *testing.T) {
	owner := testKey(t, rfc8032Seed)
	member := testKey(t, "0202020202020202020202020202020202020202020202020202020202020202")
	ownerPub, memberPub := owner.Public().(ed25519.PublicKey), member.Public().(ed25519.PublicKey)
	for _, tc := range []struct {
		name   string
		stake  uint64
		digest string
	}{
		{"stake absent", 0, "e766c8480e5ba7453311f0487459216fb2a9b9836523611bf7ae5bfbefcc9c69"},
		{"stake 1", 1, "8c85754a58bf69e4afbfd716558effc6d3b585e827ec01f5ced9e6d16abe42af"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cluster.Config{Cluster: "demo", Version: 4, Owner: ownerPub, Policy: cluster.PolicyStake, LeaseMillis: 600, ViewTTLMillis: 1000,
				Members: []cluster.Member{{ID: "6001", Key: memberPub, Stake: tc.stake}}}
			want := (&enc{}).str("vouch/cluster-config/v1").str("demo").u64(4).bytes(ownerPub).str("stake").
				u64(0).i64(600).i64(1000).u64(1).str("6001").bytes(memberPub).u64(tc.stake).b
			if got := c.Message(); !bytes.Equal(got, want) {
				t.Fatalf("message\n got %x\nwant %x", got, want)
			}
			sum := sha256.Sum256(want)
			if d := c.Digest(); d != hex.EncodeToString(sum[:]) || d != tc.digest {
				t.Fatalf("digest %s, want %s (pinned %s)", d, hex.EncodeToString(sum[:]), tc.digest)
			}
			s, err := cluster.Sign(c, owner)
			if err != nil {
				t.Fatal(err)
			}
			// The owner signs the canonical bytes, not the digest.
			if !ed25519.Verify(ownerPub, want, s.Signature) {
				t.Fatal("the signature does not verify over the canonical bytes")
			}
			if ed25519.Verify(ownerPub, sum[:], s.Signature) || ed25519.Verify(ownerPub, []byte(tc.digest), s.Signature) {
				t.Fatal("the signature verifies over the digest")
			}
			// vouch writes stake only when it is not 0, and reads an
			// explicit 0 as absent.
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if has := bytes.Contains(b, []byte(`"stake":`)); has != (tc.stake != 0) {
				t.Fatalf("stake %d written as %s", tc.stake, b)
			}
			back, err := cluster.ParseSigned(b)
			if err != nil || back.Config.Digest() != tc.digest {
				t.Fatalf("parsed back: %v", err)
			}
			if tc.stake == 0 {
				key := []byte(`"key":"` + b64(memberPub) + `"`)
				zero, n := bytes.Replace(b, key, append(key, `,"stake":0`...), 1), bytes.Count(b, key)
				back, err := cluster.ParseSigned(zero)
				if n != 1 || err != nil || back.Config.Digest() != tc.digest {
					t.Fatalf("explicit stake 0 (%d keys): %v", n, err)
				}
			}
		})
	}
}

func b64(p []byte) string {
	b, _ := json.Marshal(p)
	return string(b[1 : len(b)-1])
}

func TestViewVector(t *testing.T) {
	node := testKey(t, rfc8032Seed)
	pub := node.Public().(ed25519.PublicKey)
	sv, err := cluster.SignView(cluster.View{Cluster: "demo", Node: "6001", Seq: 1795466798123456, TimeMillis: 1795466798123, Alive: []string{"6002", "6001"}}, node)
	if err != nil {
		t.Fatal(err)
	}
	want := (&enc{}).str("vouch/view/v1").str("demo").str("6001").u64(1795466798123456).i64(1795466798123).bytes(pub).
		u64(2).str("6001").str("6002").b
	if got := sv.View.Message(); !bytes.Equal(got, want) {
		t.Fatalf("message\n got %x\nwant %x", got, want)
	}
	if !ed25519.Verify(pub, want, sv.Signature) {
		t.Fatal("the view's signature does not verify over its canonical bytes")
	}
	const sig = "0c55eb488c65a92a6bd7ac9a1f1fcefdac5477dbf607319de2c5c86a6e2c32db9ece33ffb2caa931750897759e2ad34c8156228fdb902da0fcb106d50052a808"
	if got := hex.EncodeToString(sv.Signature); got != sig {
		t.Fatalf("signature %s, pinned %s", got, sig)
	}
}
