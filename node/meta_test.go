package node

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestEncodeMeta(t *testing.T) {
	b, err := EncodeMeta(map[string]string{"svc": "10.0.0.1:443", "az": "b"})
	if err != nil || string(b) != `{"az":"b","svc":"10.0.0.1:443"}` {
		t.Fatalf("%s %v", b, err)
	}
	if _, err := EncodeMeta(map[string]string{"big": strings.Repeat("x", MaxMetaSize)}); !errors.Is(err, ErrMetaTooLarge) || !strings.Contains(err.Error(), "at most 512") {
		t.Fatalf("oversized: %v", err)
	}
	for _, k := range []string{"", "a=b", "a b", "\x01"} {
		if _, err := EncodeMeta(map[string]string{k: "v"}); err == nil {
			t.Errorf("key %q accepted", k)
		}
	}
	if _, err := EncodeMeta(map[string]string{"k": "a\nb"}); err == nil {
		t.Error("a control character accepted")
	}
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add([]byte(`{"svc":"10.0.0.1:443"}`))
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"vouch.observer":"1"}`))
	f.Add([]byte(`{"vouch.observer":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			if IsObserver(m) {
				t.Fatalf("malformed meta %q marks an observer", b)
			}
			return
		}
		// The observer mark is a non-empty value of the reserved key.
		if IsObserver(m) != (m[ObserverMetaKey] != "") {
			t.Fatalf("IsObserver(%v) = %v", m, IsObserver(m))
		}
		// What decodes and encodes decodes to the same map.
		if enc, err := EncodeMeta(m); err == nil {
			m2, err := DecodeMeta(enc)
			if err != nil || !maps.Equal(m, m2) {
				t.Fatalf("round trip: %v %v %v", m, m2, err)
			}
		}
	})
}
