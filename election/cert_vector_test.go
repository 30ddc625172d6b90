package election_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/receipt"
)

// A known answer for docs/FORMATS.md, "Certificates": the wire form
// carries the digests as hex text, where the receipt's signed message has
// their raw bytes. Checked against an encoding written from the document.
func TestCertificateWireVector(t *testing.T) {
	seed, _ := hex.DecodeString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60") // RFC 8032 7.1, TEST 1
	key := ed25519.NewKeyFromSeed(seed)
	input := []byte(`{"cluster":"demo","node_list":["5000","5001"]}`)
	output := []byte(`{"cluster":"demo","leader":"5001","members":["5000","5001"],"members_digest":"be2f8d9fe3e7744336ead9469ca02f2e4530d411548cf85402ee43bd992a1a25"}`)
	r := receipt.Receipt{FunctionID: "vz4s6kq2m7ahb3xd5c4ntyf2qe", FunctionChecksum: "0585f6558fbc88ab7dfb7840e5cf3c95bfb8382a6423a01f9c8e06f15da18e8a",
		InputSHA256: receipt.SHA256Hex(input), OutputSHA256: receipt.SHA256Hex(output), Seq: 42, Time: time.Date(2025, 6, 1, 12, 34, 56, 123456789, time.UTC)}
	if err := r.Sign(key); err != nil {
		t.Fatal(err)
	}
	c := &election.Certificate{Output: output, Receipt: r}

	var want []byte
	field := func(p []byte) {
		want = binary.BigEndian.AppendUint32(want, uint32(len(p)))
		want = append(want, p...)
	}
	field([]byte("vouch/cert/v1"))
	field(output)
	field([]byte(r.FunctionID))
	field([]byte(r.FunctionChecksum)) // 64 hex characters, not 32 bytes
	field([]byte(r.InputSHA256))
	field([]byte(r.OutputSHA256))
	want = binary.BigEndian.AppendUint64(want, 42)
	want = binary.BigEndian.AppendUint64(want, uint64(r.Time.UnixNano()))
	field([]byte(r.KeyID))
	field(r.Signature) // 64 raw bytes
	got := c.Encode()
	if !bytes.Equal(got, want) {
		t.Fatalf("wire form\n got %x\nwant %x", got, want)
	}
	const pinned = "82eb144a4791127c9d8535bc7e548379c0cf0610e804db7dc53c3983dff68180"
	if sum := sha256.Sum256(got); hex.EncodeToString(sum[:]) != pinned {
		t.Fatalf("wire form's SHA-256 %x, pinned %s", sum, pinned)
	}
	back, err := election.DecodeCertificate(got)
	if err != nil || !bytes.Equal(back.Encode(), got) {
		t.Fatalf("decode: %v", err)
	}
	// Digests as raw bytes, as in the receipt's signed message, are not a
	// certificate.
	raw := bytes.Replace(got, []byte(r.InputSHA256), []byte(string(mustHex(r.InputSHA256))+string(make([]byte, 32))), 1)
	if _, err := election.DecodeCertificate(raw); err == nil {
		t.Fatal("a certificate with a raw-byte digest decoded")
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
