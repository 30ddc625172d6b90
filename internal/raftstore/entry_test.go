package raftstore

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// FuzzEntry checks that decoding never panics, that whatever decodes
// encodes back to the same bytes (the encoding is canonical), and that
// encoding any entry decodes back to it.
func FuzzEntry(f *testing.F) {
	for _, l := range []*raft.Log{
		{},
		{Index: 1, Term: 2, Type: raft.LogConfiguration, Data: []byte("d"), Extensions: []byte("e"),
			AppendedAt: time.Date(2026, 12, 6, 0, 0, 0, 5, time.UTC)},
		{Index: 1<<64 - 1, Term: 1<<64 - 1, Type: 255, AppendedAt: time.Unix(-1, 999999999)},
	} {
		b, err := encodeEntry(l)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, l.Index, l.Term, uint8(l.Type), l.Data, l.Extensions, l.AppendedAt.Unix(), int64(l.AppendedAt.Nanosecond()))
	}
	f.Fuzz(func(t *testing.T, raw []byte, index, term uint64, typ uint8, data, ext []byte, sec, nsec int64) {
		var l raft.Log
		if err := decodeEntry(raw, &l); err == nil {
			again, err := encodeEntry(&l)
			if err != nil || !bytes.Equal(again, raw) {
				t.Fatalf("decoded %+v re-encodes to %x, %v; was %x", l, again, err, raw)
			}
		} else if !errors.Is(err, errMalformed) {
			t.Fatalf("decode error %v does not wrap errMalformed", err)
		}

		in := raft.Log{Index: index, Term: term, Type: raft.LogType(typ), Data: data, Extensions: ext}
		if sec != 0 || nsec != 0 {
			in.AppendedAt = time.Unix(sec, nsec)
		}
		b, err := encodeEntry(&in)
		if err != nil {
			return // a time that Unix seconds cannot carry; raft never makes one
		}
		var out raft.Log
		if err := decodeEntry(b, &out); err != nil {
			t.Fatalf("decode(encode(%+v)): %v", in, err)
		}
		if !sameLog(&out, &in) {
			t.Fatalf("decode(encode(%+v)) = %+v", in, out)
		}
	})
}

func TestDecodeRejectsNonCanonical(t *testing.T) {
	good, err := encodeEntry(entry(3))
	if err != nil {
		t.Fatal(err)
	}
	zero, _ := encodeEntry(&raft.Log{})
	mutate := func(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }
	for name, b := range map[string][]byte{
		"empty":              nil,
		"version 2":          mutate(good, func(b []byte) []byte { b[0] = 2; return b }),
		"time flag 2":        mutate(good, func(b []byte) []byte { b[18] = 2; return b }),
		"zero flag, seconds": mutate(zero, func(b []byte) []byte { b[20] = 1; return b }),
		"nanoseconds 1e9":    mutate(good, func(b []byte) []byte { copy(b[27:], []byte{0x3b, 0x9a, 0xca, 0x00}); return b }),
		"trailing byte":      append(bytes.Clone(good), 0),
		"cut short":          good[:len(good)-1],
		"huge data length":   mutate(good, func(b []byte) []byte { copy(b[31:], []byte{0xff, 0xff, 0xff, 0xff}); return b }),
	} {
		var l raft.Log
		if err := decodeEntry(b, &l); !errors.Is(err, errMalformed) {
			t.Errorf("%s: %v, want errMalformed", name, err)
		}
	}
}
