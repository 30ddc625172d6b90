package attest

import (
	"reflect"
	"testing"
)

// FuzzVerify checks that Verify (and the payload decoder under it) never
// panics, and that whatever verifies is self-consistent. It calls verify
// directly, without Verify's recover, so that a panic is reported.
func FuzzVerify(f *testing.F) {
	real, debug := realDoc(f), realDebugDoc(f)
	sim, err := NewSimulated(f.TempDir(), testPCR0)
	if err != nil {
		f.Fatal(err)
	}
	simDoc, err := sim.Attest(f.Context(), Request{Nonce: []byte("nonce"), UserData: []byte("user data"), PublicKey: []byte("key")})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real)
	f.Add(debug)
	f.Add(simDoc)
	f.Add(append([]byte{0xd2}, real...))
	f.Add(real[:100])
	msg, _ := decodeSign1(simDoc)
	f.Add(msg.Payload)

	p := Policy{AllowSimulated: true, AllowDebug: true, Now: at(nitroTime)}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := verify(data, &p)
		if (c == nil) == (err == nil) {
			t.Fatalf("claims %v with error %v", c, err)
		}
		if c != nil && (c.LeafCertificate == nil || c.Simulated != (c.Platform == PlatformSimulated)) {
			t.Fatalf("inconsistent claims %+v", c)
		}
		// The payload decoder on its own: what it accepts survives a
		// round trip through the encoder.
		if d, err := parseDocument(data); err == nil {
			again, err := parseDocument(d.marshal())
			if err != nil || !reflect.DeepEqual(d, again) {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}
