package election

import (
	"testing"
)

// FuzzDecodeTermCertificate feeds arbitrary wire bytes to what a node does
// with a term certificate from a peer: decode, verify, hand to the term
// core. Nothing may panic, and nothing that fails verification may be
// accepted.
func FuzzDecodeTermCertificate(f *testing.F) {
	rt := newFakeRuntime(1)
	out := []byte(`{"cluster":"demo","config_digest":"","term":3,"leader":"n1","members_digest":"00","issued_at_ms":1,"lease_ms":600,"policy":"highest","mode":"closed"}`)
	good := rt.sign(out, []byte("view"))
	f.Add(good.Encode())
	f.Add(rt.sign([]byte(`{"term":0}`), nil).Encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCertificate(b)
		if err != nil {
			return
		}
		tc := NewTermCore("n2", rt.trust("demo"), 2)
		a := tc.Receive(c)
		if a.Accepted != nil || a.Renewed != nil {
			if _, rej := VerifyTerm(c, rt.trust("demo")); rej != nil {
				t.Fatalf("accepted a term certificate that does not verify: %v", rej)
			}
			if _, term := tc.Leader(); term < 2 {
				t.Fatalf("accepted term %d below the floor", term)
			}
		}
		// The same bytes again are the held certificate, not a new one.
		if a := tc.Receive(c); a.Accepted != nil {
			t.Fatal("the same certificate was accepted twice")
		}
	})
}
