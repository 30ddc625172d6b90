package api_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/api"
)

func TestGenerateGossipKey(t *testing.T) {
	a, err := api.GenerateGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := api.GenerateGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	ka, err := api.ParseGossipKey(a)
	if err != nil || len(ka) != api.GossipKeySize {
		t.Fatalf("ParseGossipKey(GenerateGossipKey()) = %d bytes, %v", len(ka), err)
	}
	if a == b {
		t.Fatal("two generated keys are equal")
	}
}

func TestParseGossipKeyList(t *testing.T) {
	k32 := bytes.Repeat([]byte{0x5a}, 32)
	k24 := bytes.Repeat([]byte{0x24}, 24)
	k16 := bytes.Repeat([]byte{0xa5}, 16)
	b := base64.StdEncoding.EncodeToString
	for _, c := range []struct {
		in      string
		primary []byte
		extra   [][]byte
	}{
		{b(k32), k32, nil},
		{b(k32) + "\n", k32, nil},
		{b(k16) + "," + b(k32), k16, [][]byte{k32}},
		{"  " + b(k24) + "\n" + b(k32) + "\r\n" + b(k16) + "\n\n", k24, [][]byte{k32, k16}},
		{b(k32) + ", " + b(k16), k32, [][]byte{k16}},
	} {
		p, e, err := api.ParseGossipKeyList(c.in)
		if err != nil || !bytes.Equal(p, c.primary) || len(e) != len(c.extra) {
			t.Fatalf("ParseGossipKeyList(%q) = %x, %x, %v", c.in, p, e, err)
		}
		for i := range e {
			if !bytes.Equal(e[i], c.extra[i]) {
				t.Fatalf("ParseGossipKeyList(%q): extra %d = %x", c.in, i, e[i])
			}
		}
	}

	secret := b(k32)
	for _, c := range []struct{ in, want string }{
		{"", "no gossip key"},
		{" ,\n", "no gossip key"},
		{secret[:20], "key 1 of 1: malformed gossip key"},
		{secret + "," + secret[:40], "key 2 of 2: malformed gossip key"},
		{b(k32[:10]), "key 1 of 1: malformed gossip key: 10 bytes, want 16, 24 or 32"},
		{strings.TrimRight(b(k16), "="), "malformed gossip key"},
		{b(make([]byte, 64)), "64 bytes"},
		{"#" + secret, "malformed gossip key"},
	} {
		_, _, err := api.ParseGossipKeyList(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("ParseGossipKeyList(%q) = %v, want an error saying %q", c.in, err, c.want)
		}
		if c.in == "" && !errors.Is(err, api.ErrNoGossipKey) {
			t.Fatalf("an empty list: %v does not wrap ErrNoGossipKey", err)
		}
		if strings.Contains(err.Error(), secret[:16]) {
			t.Fatalf("the error repeats the key: %v", err)
		}
	}
}

// FuzzParseGossipKeyList: no input panics, and what is accepted is keys of
// a valid size whose canonical encodings parse back to the same keys.
func FuzzParseGossipKeyList(f *testing.F) {
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, 32)))
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, 16)) + "," + base64.StdEncoding.EncodeToString(make([]byte, 24)))
	f.Add("")
	f.Add("====")
	f.Fuzz(func(t *testing.T, s string) {
		p, e, err := api.ParseGossipKeyList(s)
		if err != nil {
			if p != nil || e != nil {
				t.Fatal("keys and an error")
			}
			return
		}
		all := append([][]byte{p}, e...)
		var enc []string
		for _, k := range all {
			if len(k) != 16 && len(k) != 24 && len(k) != 32 {
				t.Fatalf("accepted a %d-byte key", len(k))
			}
			enc = append(enc, base64.StdEncoding.EncodeToString(k))
		}
		p2, e2, err := api.ParseGossipKeyList(strings.Join(enc, ","))
		if err != nil || !bytes.Equal(p2, p) || len(e2) != len(e) {
			t.Fatalf("re-encoded list parses as %x, %x, %v", p2, e2, err)
		}
	})
}
