package api_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/api"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestIdentityUserDataRoundTrip(t *testing.T) {
	for i := 0; i < 20; i++ {
		rk, hk := make([]byte, 32), make([]byte, 32)
		rand.Read(rk)
		rand.Read(hk)
		ud := api.IdentityUserData(rk, hk)
		if len(ud) != 4+len(api.IdentityTag)+4+32+4+32 {
			t.Fatalf("user_data is %d bytes", len(ud))
		}
		gotR, gotH, _, err := api.ParseIdentityUserData(ud)
		if err != nil || !bytes.Equal(gotR, rk) || !bytes.Equal(gotH, hk) {
			t.Fatalf("ParseIdentityUserData(IdentityUserData(r, h)) = %x, %x, %v", gotR, gotH, err)
		}
	}
	// The two keys are not interchangeable.
	r, h, _, err := api.ParseIdentityUserData(api.IdentityUserData(key(1), key(2)))
	if err != nil || r[0] != 1 || h[0] != 2 {
		t.Fatalf("keys swapped: %x %x %v", r, h, err)
	}
}

// userData builds a user_data by hand: the tag, then length-prefixed parts.
func userData(tag string, parts ...[]byte) []byte {
	lp := func(b, p []byte) []byte { return append(binary.BigEndian.AppendUint32(b, uint32(len(p))), p...) }
	b := lp(nil, []byte(tag))
	for _, p := range parts {
		b = lp(b, p)
	}
	return b
}

func TestParseIdentityUserDataRefuses(t *testing.T) {
	good := api.IdentityUserData(key(1), key(2))
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"wrong tag", userData("vouch/identity/v3", key(1), key(2)), `tag "vouch/identity/v3"`},
		{"receipt tag", userData("vouch/receipt/v1", key(1), key(2)), "tag"},
		{"no keys", userData(api.IdentityTag), "truncated"},
		{"one key", userData(api.IdentityTag, key(1)), "truncated"},
		{"three keys", userData(api.IdentityTag, key(1), key(2), key(3)), "trailing"},
		{"short receipt key", userData(api.IdentityTag, key(1)[:31], key(2)), "32 bytes"},
		{"long hpke key", userData(api.IdentityTag, key(1), append(key(2), 0)), "32 bytes"},
		{"empty keys", userData(api.IdentityTag, nil, nil), "32 bytes"},
		{"trailing byte", append(bytes.Clone(good), 0), "trailing"},
		{"a raw key", key(1), "attestation user_data"},
	} {
		r, h, _, err := api.ParseIdentityUserData(tc.data)
		if err == nil || r != nil || h != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseIdentityUserData = %x, %x, %v; want an error mentioning %q", tc.name, r, h, err, tc.want)
		}
	}
	for n := 0; n < len(good); n++ {
		if _, _, _, err := api.ParseIdentityUserData(good[:n]); err == nil {
			t.Fatalf("the first %d of %d bytes parse", n, len(good))
		}
	}
}

func FuzzParseIdentityUserData(f *testing.F) {
	f.Add(api.IdentityUserData(key(1), key(2)))
	f.Add(userData(api.IdentityTag, key(1)))
	f.Add(userData("x", key(1), key(2)))
	f.Add(api.IdentityUserDataReplica(key(1), key(2), "r1"))
	f.Add(api.IdentityUserDataTLS(key(1), key(2), key(3)))
	f.Add(api.IdentityUserDataTLS(key(1), key(2), nil))
	f.Add(api.IdentityUserDataReplicaTLS(key(1), key(2), "r1", key(3)))
	f.Add(userData(api.IdentityTLSTag, key(1), key(2), key(3)[:31]))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := api.ParseIdentityBinding(data)
		r, h, rid, err2 := api.ParseIdentityUserData(data)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("ParseIdentityBinding: %v; ParseIdentityUserData: %v", err, err2)
		}
		if err != nil {
			if b != nil || r != nil || h != nil {
				t.Fatal("keys and an error")
			}
			return
		}
		if !bytes.Equal(r, b.ReceiptKey) || !bytes.Equal(h, b.HPKEKey) || rid != b.ReplicaID {
			t.Fatal("the two parsers disagree")
		}
		// One set of values, one encoding.
		var want []byte
		switch b.Tag {
		case api.IdentityTag:
			want = api.IdentityUserData(r, h)
		case api.IdentityReplicaTag:
			want = api.IdentityUserDataReplica(r, h, rid)
		case api.IdentityTLSTag:
			want = api.IdentityUserDataTLS(r, h, b.TLSKeySHA256)
		case api.IdentityReplicaTLSTag:
			want = api.IdentityUserDataReplicaTLS(r, h, rid, b.TLSKeySHA256)
		default:
			t.Fatalf("accepted tag %q", b.Tag)
		}
		if len(r) != 32 || len(h) != 32 || (b.TLSKeySHA256 != nil && len(b.TLSKeySHA256) != 32) || !bytes.Equal(want, data) {
			t.Fatalf("accepted %x as %+v", data, b)
		}
	})
}

func TestIdentityBindingTLS(t *testing.T) {
	b, err := api.ParseIdentityBinding(api.IdentityUserDataTLS(key(1), key(2), key(3)))
	if err != nil || b.ReplicaID != "" || !bytes.Equal(b.TLSKeySHA256, key(3)) || b.Tag != api.IdentityTLSTag {
		t.Fatalf("v2: %+v, %v", b, err)
	}
	b, err = api.ParseIdentityBinding(api.IdentityUserDataReplicaTLS(key(1), key(2), "r-2", key(4)))
	if err != nil || b.ReplicaID != "r-2" || !bytes.Equal(b.TLSKeySHA256, key(4)) {
		t.Fatalf("replica v2: %+v, %v", b, err)
	}
	b, err = api.ParseIdentityBinding(api.IdentityUserDataTLS(key(1), key(2), nil))
	if err != nil || b.TLSKeySHA256 != nil {
		t.Fatalf("plain HTTP v2: %+v, %v", b, err)
	}
	if b, err = api.ParseIdentityBinding(api.IdentityUserData(key(1), key(2))); err != nil || b.TLSKeySHA256 != nil {
		t.Fatalf("v1: %+v, %v", b, err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"short hash", api.IdentityUserDataTLS(key(1), key(2), key(3)[:31]), "31 bytes, want 32"},
		{"long hash", api.IdentityUserDataTLS(key(1), key(2), append(key(3), 0)), "33 bytes"},
		{"no hash", userData(api.IdentityTLSTag, key(1), key(2)), "truncated"},
		{"replica without ID", userData(api.IdentityReplicaTLSTag, key(1), key(2), key(3)), "truncated"},
		{"bad replica ID", api.IdentityUserDataReplicaTLS(key(1), key(2), "R", key(3)), "replica ID"},
		{"v1 with a hash", userData(api.IdentityTag, key(1), key(2), key(3)), "trailing"},
	} {
		if b, err := api.ParseIdentityBinding(tc.data); err == nil || b != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseIdentityBinding = %+v, %v; want an error mentioning %q", tc.name, b, err, tc.want)
		}
	}
}

func TestDecodeStrict(t *testing.T) {
	var v struct {
		A int `json:"a"`
	}
	if err := api.DecodeStrict(strings.NewReader(`{"a":1}`), 7, &v); err != nil || v.A != 1 {
		t.Fatalf("exactly at the limit: %v", err)
	}
	if err := api.DecodeStrict(strings.NewReader(`{"a":1} `), 7, &v); err == nil || !strings.Contains(err.Error(), "larger than 7 bytes") {
		t.Fatalf("over the limit: %v", err)
	}
	for _, s := range []string{`{"a":1,"b":2}`, `{"a":1}{}`, `{"a":"1"}`, ``, `{"a":1} x`} {
		if err := api.UnmarshalStrict([]byte(s), &v); err == nil {
			t.Errorf("UnmarshalStrict(%s) accepted", s)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	e := &api.Error{Code: api.CodeForbidden, Message: "no", Status: 403}
	if e.Error() != "no" {
		t.Fatal(e.Error())
	}
	e.Hint = "mint a token"
	if e.Error() != "no (mint a token)" {
		t.Fatal(e.Error())
	}
}

func TestIdentityUserDataReplica(t *testing.T) {
	ud := api.IdentityUserDataReplica(key(1), key(2), "r-1")
	r, h, rid, err := api.ParseIdentityUserData(ud)
	if err != nil || !bytes.Equal(r, key(1)) || !bytes.Equal(h, key(2)) || rid != "r-1" {
		t.Fatalf("got %x %x %q %v", r, h, rid, err)
	}
	for _, bad := range []string{"", "R1", "r 1", strings.Repeat("a", 65)} {
		if _, _, _, err := api.ParseIdentityUserData(api.IdentityUserDataReplica(key(1), key(2), bad)); err == nil {
			t.Errorf("replica ID %q accepted", bad)
		}
	}
}
