package canon_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vouch-dev/vouch/internal/canon"
)

// The known-answer vectors of the canonical encoding live in
// testdata/vectors/canonical.json (docs/FORMATS.md, "Canonical encoding").
// Rebuild them after a deliberate format change with:
//
//	go test ./internal/canon -run TestVectors -update
var update = flag.Bool("update", false, "rewrite the vector files in testdata/vectors")

const vectorDir = "../../testdata/vectors"

// vectorField is one field of a canonical message. Integers are decimal
// strings so that no JSON parser rounds them.
type vectorField struct {
	Type  string  `json:"type"`            // "string", "bytes", "uint64" or "int64"
	Value *string `json:"value,omitempty"` // for strings and integers
	Hex   *string `json:"hex,omitempty"`   // for "bytes"
}

type canonicalCase struct {
	Name     string        `json:"name"`
	Fields   []vectorField `json:"fields"`
	Encoding string        `json:"encoding_hex"`
}

type canonicalVectors struct {
	Description string          `json:"description"`
	Cases       []canonicalCase `json:"cases"`
}

func ptr(s string) *string     { return &s }
func str(s string) vectorField { return vectorField{Type: "string", Value: ptr(s)} }
func byt(p []byte) vectorField { return vectorField{Type: "bytes", Hex: ptr(hex.EncodeToString(p))} }
func u64(v uint64) vectorField {
	return vectorField{Type: "uint64", Value: ptr(strconv.FormatUint(v, 10))}
}
func i64(v int64) vectorField {
	return vectorField{Type: "int64", Value: ptr(strconv.FormatInt(v, 10))}
}
func fields(f ...vectorField) []vectorField { return f }

// encodeIndependently encodes fields from the rules in docs/FORMATS.md,
// without package canon, so that the document and the code cannot drift
// apart unnoticed.
func encodeIndependently(t *testing.T, fs []vectorField) []byte {
	t.Helper()
	var b []byte
	lp := func(p []byte) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	for _, f := range fs {
		switch f.Type {
		case "string":
			lp([]byte(*f.Value))
		case "bytes":
			p, err := hex.DecodeString(*f.Hex)
			if err != nil {
				t.Fatal(err)
			}
			lp(p)
		case "uint64":
			v, err := strconv.ParseUint(*f.Value, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			b = binary.BigEndian.AppendUint64(b, v)
		case "int64":
			v, err := strconv.ParseInt(*f.Value, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			b = binary.BigEndian.AppendUint64(b, uint64(v))
		default:
			t.Fatalf("unknown field type %q", f.Type)
		}
	}
	return b
}

func build(t *testing.T, fs []vectorField) []byte {
	t.Helper()
	if len(fs) == 0 || fs[0].Type != "string" {
		t.Fatal("a canonical message starts with its tag, a string")
	}
	c := canon.New(*fs[0].Value)
	for _, f := range fs[1:] {
		switch f.Type {
		case "string":
			c.String(*f.Value)
		case "bytes":
			p, _ := hex.DecodeString(*f.Hex)
			c.Bytes(p)
		case "uint64":
			v, _ := strconv.ParseUint(*f.Value, 10, 64)
			c.Uint64(v)
		case "int64":
			v, _ := strconv.ParseInt(*f.Value, 10, 64)
			c.Int64(v)
		}
	}
	return c.Message()
}

func TestVectors(t *testing.T) {
	v := canonicalVectors{
		Description: "Canonical encoding (docs/FORMATS.md): a string or byte string is a 4-byte big-endian length followed by the bytes; " +
			"uint64 is 8 bytes big-endian; int64 is 8 bytes big-endian two's complement. A message starts with its tag, a string. " +
			"Integer values are decimal strings; bytes are hex.",
		Cases: []canonicalCase{
			{Name: "every field type", Fields: fields(str("t"), str("ab"), byt([]byte{0xff}), u64(1), i64(-1))},
			{Name: "empty string and empty bytes", Fields: fields(str("vouch/example/v1"), str(""), byt(nil))},
			{Name: "integer extremes", Fields: fields(str("x"), u64(0), u64(1<<64-1), i64(-1<<63), i64(1<<63-1))},
			{Name: "utf-8 string is its bytes", Fields: fields(str("tag"), str("héllo ✓"))},
		},
	}
	for i := range v.Cases {
		c := &v.Cases[i]
		got := build(t, c.Fields)
		if want := encodeIndependently(t, c.Fields); !bytes.Equal(got, want) {
			t.Fatalf("%s: package canon encodes %x, the documented rules give %x", c.Name, got, want)
		}
		c.Encoding = hex.EncodeToString(got)
		// The reader takes the message apart again, to the last byte.
		r := canon.NewReader(got)
		for _, f := range c.Fields {
			switch f.Type {
			case "string", "bytes":
				r.Bytes()
			default:
				r.Uint64()
			}
		}
		if err := r.Done(); err != nil {
			t.Fatalf("%s: reading back: %v", c.Name, err)
		}
	}
	checkVectorFile(t, "canonical.json", v)
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
		t.Fatalf("%v (generate it with: go test ./internal/canon -run TestVectors -update)", err)
	}
	if !bytes.Equal(committed, buf.Bytes()) {
		t.Fatalf("%s differs from what the code computes now:\n--- committed\n%s\n--- computed\n%s\n"+
			"If the format changed on purpose, rerun with -update and document the change in docs/FORMATS.md.",
			path, committed, buf.Bytes())
	}
}
