package receipt_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/receipt"
)

// The known-answer vectors of receipts and statements live in
// testdata/vectors/receipt.json and statement.json (docs/FORMATS.md,
// "Receipts and statements"). Rebuild them after a deliberate format change
// with:
//
//	go test ./receipt -run TestVectors -update
var update = flag.Bool("update", false, "rewrite the vector files in testdata/vectors")

const vectorDir = "../testdata/vectors"

// The fixed inputs of the vectors. The Ed25519 seed is RFC 8032's TEST 1,
// so an implementation can check its key derivation against the RFC too.
const (
	vectorSeed       = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	vectorFunctionID = "vz4s6kq2m7ahb3xd5c4ntyf2qe"
	// vectorChecksum is the checksum of the second bundle vector
	// (testdata/vectors/bundle.json, module and vouch.json).
	vectorChecksum = "0585f6558fbc88ab7dfb7840e5cf3c95bfb8382a6423a01f9c8e06f15da18e8a"
	vectorInput    = `{"cluster":"demo","node_list":["5000","5001","5002"]}`
	vectorSeq      = 42
)

var vectorTime = time.Date(2025, 6, 1, 12, 34, 56, 123456789, time.UTC)

func vectorKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	seed, err := hex.DecodeString(vectorSeed)
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// vectorOutput is what the leader function answers to vectorInput.
func vectorOutput() string {
	d := sha256.Sum256([]byte("5000\n5001\n5002"))
	return `{"cluster":"demo","leader":"5002","members":["5000","5001","5002"],"members_digest":"` + hex.EncodeToString(d[:]) + `"}`
}

type keyVector struct {
	Ed25519Seed string `json:"ed25519_seed"`
	PublicKey   string `json:"public_key"`
	KeyID       string `json:"key_id"`
}

type receiptVector struct {
	Description  string          `json:"description"`
	Key          keyVector       `json:"key"`
	Input        string          `json:"input"`
	Output       string          `json:"output"`
	TimeUnixNano string          `json:"time_unix_nano"`
	Message      string          `json:"message_hex"`
	Signature    string          `json:"signature_hex"`
	JSON         json.RawMessage `json:"json"`
}

type statementVector struct {
	Description string          `json:"description"`
	Key         keyVector       `json:"key"`
	Message     string          `json:"message_hex"`
	Signature   string          `json:"signature_hex"`
	JSON        json.RawMessage `json:"json"`
}

// lp is the documented length prefix: 4 bytes big-endian, then the bytes.
func lp(b, p []byte) []byte {
	return append(binary.BigEndian.AppendUint32(b, uint32(len(p))), p...)
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	p, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func makeKeyVector(key ed25519.PrivateKey) keyVector {
	pub := key.Public().(ed25519.PublicKey)
	return keyVector{Ed25519Seed: hex.EncodeToString(key.Seed()), PublicKey: hex.EncodeToString(pub), KeyID: receipt.KeyID(pub)}
}

// vectorReceipt returns the signed receipt of the vectors.
func vectorReceipt(t testing.TB) *receipt.Receipt {
	t.Helper()
	r := &receipt.Receipt{
		FunctionID:       vectorFunctionID,
		FunctionChecksum: vectorChecksum,
		InputSHA256:      receipt.SHA256Hex([]byte(vectorInput)),
		OutputSHA256:     receipt.SHA256Hex([]byte(vectorOutput())),
		Seq:              vectorSeq,
		Time:             vectorTime,
	}
	if err := r.Sign(vectorKey(t)); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestVectors(t *testing.T) {
	t.Run("receipt", testReceiptVector)
	t.Run("statement", testStatementVector)
}

func testReceiptVector(t *testing.T) {
	key := vectorKey(t)
	pub := key.Public().(ed25519.PublicKey)
	r := vectorReceipt(t)
	msg, err := r.Message()
	if err != nil {
		t.Fatal(err)
	}
	// The message as docs/FORMATS.md describes it, built without package
	// canon.
	keySum := sha256.Sum256(pub)
	var want []byte
	want = lp(want, []byte(receipt.ReceiptTag))
	want = lp(want, []byte(vectorFunctionID))
	want = lp(want, unhex(t, vectorChecksum))
	want = lp(want, unhex(t, r.InputSHA256))
	want = lp(want, unhex(t, r.OutputSHA256))
	want = binary.BigEndian.AppendUint64(want, vectorSeq)
	want = binary.BigEndian.AppendUint64(want, uint64(vectorTime.UnixNano()))
	want = lp(want, []byte(hex.EncodeToString(keySum[:])))
	if !bytes.Equal(msg, want) {
		t.Fatalf("receipt message is\n%x\nthe documented layout gives\n%x", msg, want)
	}
	if !ed25519.Verify(pub, msg, r.Signature) {
		t.Fatal("signature does not verify over the message with crypto/ed25519")
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	// The transport JSON parses back into a receipt that verifies.
	back, err := receipt.ParseReceipt(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(pub); err != nil {
		t.Fatal(err)
	}
	checkVectorFile(t, "receipt.json", receiptVector{
		Description: "A run receipt (docs/FORMATS.md, \"Receipts and statements\"). The key is RFC 8032 TEST 1. " +
			"input_sha256 and output_sha256 are the SHA-256 of input and output; message_hex is the canonical message the " +
			"Ed25519 signature covers; json is the transport form (signature in standard base64, time in RFC 3339 with nanoseconds).",
		Key:          makeKeyVector(key),
		Input:        vectorInput,
		Output:       vectorOutput(),
		TimeUnixNano: strconv.FormatInt(vectorTime.UnixNano(), 10),
		Message:      hex.EncodeToString(msg),
		Signature:    hex.EncodeToString(r.Signature),
		JSON:         js,
	})
}

func testStatementVector(t *testing.T) {
	key := vectorKey(t)
	pub := key.Public().(ed25519.PublicKey)
	s := &receipt.Statement{FunctionID: vectorFunctionID, FunctionChecksum: vectorChecksum}
	if err := s.Sign(key); err != nil {
		t.Fatal(err)
	}
	msg, err := s.Message()
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	want = lp(want, []byte(receipt.StatementTag))
	want = lp(want, []byte(vectorFunctionID))
	want = lp(want, unhex(t, vectorChecksum))
	want = lp(want, []byte(receipt.KeyID(pub)))
	if !bytes.Equal(msg, want) {
		t.Fatalf("statement message is\n%x\nthe documented layout gives\n%x", msg, want)
	}
	if !ed25519.Verify(pub, msg, s.Signature) {
		t.Fatal("signature does not verify over the message with crypto/ed25519")
	}
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := receipt.ParseStatement(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(pub); err != nil {
		t.Fatal(err)
	}
	checkVectorFile(t, "statement.json", statementVector{
		Description: "A function statement (docs/FORMATS.md, \"Receipts and statements\"): the runtime's signed claim that a " +
			"function ID has a checksum. Same key as receipt.json.",
		Key:       makeKeyVector(key),
		Message:   hex.EncodeToString(msg),
		Signature: hex.EncodeToString(s.Signature),
		JSON:      js,
	})
}

// checkVectorFile compares v, as indented JSON, with the committed file
// byte for byte, or rewrites the file with -update.
func checkVectorFile(t *testing.T, name string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(vectorDir, name)
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	committed, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it with: go test ./receipt -run TestVectors -update)", err)
	}
	if !bytes.Equal(committed, buf.Bytes()) {
		t.Fatalf("%s differs from what the code computes now:\n--- committed\n%s\n--- computed\n%s\n"+
			"If the format changed on purpose, rerun with -update and document the change in docs/FORMATS.md.",
			path, committed, buf.Bytes())
	}
}
