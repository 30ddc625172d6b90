package receipt_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/receipt"
)

// TestTamper changes each signed field of a receipt in turn: none of the
// changes may survive verification.
func TestTamper(t *testing.T) {
	pub := vectorKey(t).Public().(ed25519.PublicKey)
	other, _, _ := ed25519.GenerateKey(nil)
	flip := func(s string) string { // another valid digest
		if s[0] == '0' {
			return "1" + s[1:]
		}
		return "0" + s[1:]
	}
	cases := map[string]func(r *receipt.Receipt){
		"function_id":       func(r *receipt.Receipt) { r.FunctionID += "x" },
		"function_checksum": func(r *receipt.Receipt) { r.FunctionChecksum = flip(r.FunctionChecksum) },
		"input_sha256":      func(r *receipt.Receipt) { r.InputSHA256 = flip(r.InputSHA256) },
		"output_sha256":     func(r *receipt.Receipt) { r.OutputSHA256 = flip(r.OutputSHA256) },
		"seq":               func(r *receipt.Receipt) { r.Seq++ },
		"time":              func(r *receipt.Receipt) { r.Time = r.Time.Add(time.Nanosecond) },
		"signature":         func(r *receipt.Receipt) { r.Signature[0] ^= 1 },
		"key_id":            func(r *receipt.Receipt) { r.KeyID = receipt.KeyID(other) },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			r := vectorReceipt(t)
			change(r)
			if err := r.Verify(pub); !errors.Is(err, receipt.ErrSignature) {
				t.Fatalf("Verify after changing %s = %v, want ErrSignature", name, err)
			}
		})
	}
	t.Run("time zone", func(t *testing.T) {
		// The same instant in another zone is the same receipt.
		r := vectorReceipt(t)
		r.Time = r.Time.In(time.FixedZone("X", 5*3600))
		if err := r.Verify(pub); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		if err := vectorReceipt(t).Verify(other); !errors.Is(err, receipt.ErrSignature) {
			t.Fatalf("Verify under another key = %v, want ErrSignature", err)
		}
	})
}

func TestParseRefuses(t *testing.T) {
	good, err := json.Marshal(vectorReceipt(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"unknown field":     strings.Replace(string(good), `"seq"`, `"extra":1,"seq"`, 1),
		"trailing data":     string(good) + `{}`,
		"uppercase digest":  strings.Replace(string(good), `"function_checksum":"0585f6`, `"function_checksum":"0585F6`, 1),
		"seq zero":          strings.Replace(string(good), `"seq":42`, `"seq":0`, 1),
		"bad function id":   strings.Replace(string(good), `"function_id":"vz4s`, `"function_id":"v/4s`, 1),
		"too large":         string(good[:len(good)-1]) + `,"x":"` + strings.Repeat("a", receipt.MaxJSON) + `"}`,
		"time out of range": strings.Replace(string(good), `"2025-06-01`, `"1999-06-01`, 1),
		"seq given twice":   strings.Replace(string(good), `"seq":42`, `"seq":41,"seq":42`, 1),
		"upper-case name":   strings.Replace(string(good), `"seq"`, `"SEQ"`, 1),
		"case-variant name": strings.Replace(string(good), `"seq":42`, `"seq":42,"Seq":43`, 1),
		"null seq":          strings.Replace(string(good), `"seq":42`, `"seq":null`, 1),
		"null receipt":      `null`,
	} {
		if _, err := receipt.ParseReceipt([]byte(data)); !errors.Is(err, receipt.ErrInvalid) {
			t.Errorf("%s: ParseReceipt = %v, want ErrInvalid", name, err)
		}
	}
}

// FuzzMalleability checks that no transport JSON other than a faithful
// copy of a signed receipt verifies: whatever parses and verifies under the
// vector key has exactly the signed canonical message of the original.
func FuzzMalleability(f *testing.F) {
	seed, err := json.Marshal(vectorReceipt(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(bytes.Replace(seed, []byte(`"seq":42`), []byte(`"seq":42.0`), 1))
	f.Add(bytes.Replace(seed, []byte(`Z"`), []byte(`+00:00"`), 1))
	f.Add(bytes.Replace(seed, []byte(`"seq":42`), []byte(`"seq":42,"Seq":43`), 1))
	pub := vectorKey(f).Public().(ed25519.PublicKey)
	want, err := vectorReceipt(f).Message()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := receipt.ParseReceipt(data)
		if err != nil {
			return
		}
		if r.Verify(pub) != nil {
			return
		}
		got, err := r.Message()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("a different receipt verifies under the vector key:\n%s", data)
		}
	})
}

// KeyID remembers the last key: alternating keys, and keys of other
// lengths, still get their own IDs.
func TestKeyIDAlternatingKeys(t *testing.T) {
	var pubs []ed25519.PublicKey
	for range 3 {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, pub)
	}
	pubs = append(pubs, ed25519.PublicKey("short"), nil)
	for i := range 20 {
		pub := pubs[(i*7)%len(pubs)]
		sum := sha256.Sum256(pub)
		if got, want := receipt.KeyID(pub), hex.EncodeToString(sum[:]); got != want {
			t.Fatalf("KeyID(%x) = %s, want %s", []byte(pub), got, want)
		}
	}
}
