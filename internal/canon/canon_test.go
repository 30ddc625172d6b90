package canon

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func TestKnownAnswer(t *testing.T) {
	got := New("t").String("ab").Bytes([]byte{0xff}).Uint64(1).Int64(-1).Message()
	want := "00000001" + "74" + "00000002" + "6162" + "00000001" + "ff" +
		"0000000000000001" + "ffffffffffffffff"
	if hex.EncodeToString(got) != want {
		t.Fatalf("encoding = %x, want %s", got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	msg := New("tag").String("x").Bytes(nil).Uint64(42).Int64(-7).Message()
	r := NewReader(msg)
	if r.String() != "tag" || r.String() != "x" || len(r.Bytes()) != 0 || r.Uint64() != 42 || r.Int64() != -7 {
		t.Fatal("round trip mismatch")
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
}

func TestTruncatedAndTrailing(t *testing.T) {
	msg := New("tag").Uint64(1).Message()
	for i := 0; i < len(msg); i++ {
		r := NewReader(msg[:i])
		_ = r.String()
		_ = r.Uint64()
		if r.Done() == nil {
			t.Fatalf("prefix of %d bytes accepted", i)
		}
	}
	r := NewReader(append(bytes.Clone(msg), 0))
	_ = r.String()
	_ = r.Uint64()
	if r.Done() == nil {
		t.Fatal("trailing byte accepted")
	}
}

func FuzzReader(f *testing.F) {
	f.Add(New("tag").String("x").Uint64(3).Message())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, msg []byte) {
		r := NewReader(msg)
		s := r.String()
		b := r.Bytes()
		u := r.Uint64()
		if r.Done() == nil {
			// A message that decodes must re-encode to the same bytes.
			again := New(s).Bytes(b).Uint64(u).Message()
			if !bytes.Equal(again, msg) {
				t.Fatalf("re-encoding differs: %x vs %x", again, msg)
			}
		}
	})
}
