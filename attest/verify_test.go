package attest

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/veraison/go-cose"
)

func TestVerifyRealNitroDocument(t *testing.T) {
	c, err := Verify(realDoc(t), Policy{Now: at(nitroTime)})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Platform != PlatformNitro || c.Simulated || c.Debug {
		t.Errorf("platform %q simulated %v debug %v", c.Platform, c.Simulated, c.Debug)
	}
	if c.ModuleID != "i-0a22e5c5f24d22174-enc0191cceb4289903f" {
		t.Errorf("module_id %q", c.ModuleID)
	}
	if c.Digest != "SHA384" || !c.Timestamp.Equal(nitroTime) {
		t.Errorf("digest %q timestamp %v", c.Digest, c.Timestamp)
	}
	if len(c.PCRs) != 16 {
		t.Errorf("%d PCRs", len(c.PCRs))
	}
	for i, v := range c.PCRs {
		if len(v) != 48 {
			t.Errorf("PCR%d is %d bytes", i, len(v))
		}
	}
	if !strings.HasPrefix(hex.EncodeToString(c.PCRs[0]), "e72a46ca80a260fb") {
		t.Errorf("PCR0 %x", c.PCRs[0])
	}
	ones := bytes.Repeat([]byte{1}, 1024)
	if !bytes.Equal(c.PublicKey, ones) || !bytes.Equal(c.UserData, ones) || !bytes.Equal(c.Nonce, ones) {
		t.Error("public_key, user_data or nonce not the expected 1024 bytes of 0x01")
	}
	if hex.EncodeToString(c.RootFingerprint[:]) != NitroRootFingerprint {
		t.Errorf("root fingerprint %x", c.RootFingerprint)
	}
	if c.LeafCertificate == nil || !strings.HasPrefix(c.LeafCertificate.Subject.CommonName, "i-0a22e5c5f24d22174-enc") {
		t.Errorf("leaf %v", c.LeafCertificate)
	}
	if s := c.String(); strings.Contains(s, "SIMULATED") || !strings.Contains(s, "platform=aws-nitro") {
		t.Errorf("String() = %q", s)
	}

	// Tagged COSE_Sign1 (tag 18) is accepted too.
	tagged := append([]byte{0xd2}, realDoc(t)...)
	if _, err := Verify(tagged, Policy{Now: at(nitroTime)}); err != nil {
		t.Errorf("tagged: %v", err)
	}
	// A pinned root fingerprint equal to the AWS root's is fine.
	fp, _ := hex.DecodeString(NitroRootFingerprint)
	if _, err := Verify(realDoc(t), Policy{Now: at(nitroTime), RootFingerprint: fp}); err != nil {
		t.Errorf("pinned AWS root: %v", err)
	}
	// The expected nonce, a wide enough MaxAge and matching PCRs pass.
	p := Policy{Now: at(nitroTime.Add(time.Minute)), Nonce: ones, MaxAge: 2 * time.Minute,
		PCRs: map[int][][]byte{0: {c.PCRs[0]}, 4: {c.PCRs[4]}}}
	if _, err := Verify(realDoc(t), p); err != nil {
		t.Errorf("full policy: %v", err)
	}
}

func TestVerifyRealDebugDocument(t *testing.T) {
	doc := realDebugDoc(t)
	_, err := Verify(doc, Policy{Now: at(nitroDebugTime)})
	if !errors.Is(err, ErrDebug) {
		t.Fatalf("strict policy: got %v, want ErrDebug", err)
	}
	c, err := Verify(doc, Policy{Now: at(nitroDebugTime), AllowDebug: true})
	if err != nil {
		t.Fatalf("AllowDebug: %v", err)
	}
	if !c.Debug || c.Platform != PlatformNitro || !strings.Contains(c.String(), "DEBUG") {
		t.Errorf("debug %v platform %q string %q", c.Debug, c.Platform, c.String())
	}
	// The production document is not debug even with AllowDebug.
	c, err = Verify(realDoc(t), Policy{Now: at(nitroTime), AllowDebug: true})
	if err != nil || c.Debug {
		t.Errorf("production doc: %v debug=%v", err, c != nil && c.Debug)
	}
}

// The payload encoder reproduces the real documents byte for byte, so the
// simulated documents have exactly Nitro's layout.
func TestPayloadLayoutMatchesNitro(t *testing.T) {
	for _, raw := range [][]byte{realDoc(t), realDebugDoc(t)} {
		msg, d := splitDoc(t, raw)
		if got := d.marshal(); !bytes.Equal(got, msg.Payload) {
			t.Fatalf("re-encoded payload differs from the real one (%d vs %d bytes)", len(got), len(msg.Payload))
		}
		if !bytes.HasPrefix(raw, []byte{0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0}) {
			t.Fatalf("real document envelope %x", raw[:8])
		}
	}
}

func TestVerifyTamperedRealDocument(t *testing.T) {
	raw := realDoc(t)
	p := Policy{Now: at(nitroTime)}
	msg, d := splitDoc(t, raw)

	t.Run("payload byte", func(t *testing.T) {
		bad := bytes.Clone(raw)
		i := bytes.Index(bad, bytes.Repeat([]byte{1}, 1024)) + 500 // inside public_key
		bad[i] ^= 0x01
		if _, err := Verify(bad, p); !errors.Is(err, ErrSignature) {
			t.Errorf("got %v, want ErrSignature", err)
		}
	})
	t.Run("signature byte", func(t *testing.T) {
		for _, off := range []int{1, 48, 95, 96} {
			bad := bytes.Clone(raw)
			bad[len(bad)-off] ^= 0x80
			if _, err := Verify(bad, p); !errors.Is(err, ErrSignature) {
				t.Errorf("offset -%d: got %v, want ErrSignature", off, err)
			}
		}
	})
	t.Run("protected header", func(t *testing.T) {
		bad := bytes.Clone(raw)
		bad[5] = 0x23 // alg -35 (ES384) -> -36 (ES512)
		if _, err := Verify(bad, p); !errors.Is(err, ErrMalformed) {
			t.Errorf("got %v, want ErrMalformed", err)
		}
	})
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 0x01; return b }
	fields := []struct {
		name   string
		mutate func(d *document)
		want   []error
	}{
		{"module_id", func(d *document) { d.ModuleID = "i-0a22e5c5f24d22175" + d.ModuleID[19:] }, []error{ErrSignature}},
		{"timestamp", func(d *document) { d.Timestamp++ }, []error{ErrSignature}},
		{"digest", func(d *document) { d.Digest = "SHA256" }, []error{ErrMalformed}},
		{"digest SHA512", func(d *document) { d.Digest = "SHA512" }, []error{ErrMalformed}},
		{"pcr of 32 bytes", func(d *document) { d.PCRs[3] = d.PCRs[3][:32] }, []error{ErrMalformed}},
		{"all pcrs of 32 bytes, digest SHA256", func(d *document) {
			d.Digest = "SHA256"
			for i, v := range d.PCRs {
				d.PCRs[i] = v[:32]
			}
		}, []error{ErrMalformed}},
		{"pcrs value", func(d *document) { d.PCRs[0] = flip(d.PCRs[0], 0) }, []error{ErrSignature}},
		{"pcrs dropped", func(d *document) { delete(d.PCRs, 15) }, []error{ErrSignature}},
		{"certificate", func(d *document) { d.Certificate = flip(d.Certificate, len(d.Certificate)-10) }, []error{ErrCertificate, ErrMalformed}},
		{"cabundle entry", func(d *document) { d.CABundle[2] = flip(d.CABundle[2], len(d.CABundle[2])-10) }, []error{ErrCertificate, ErrMalformed}},
		{"cabundle truncated", func(d *document) { d.CABundle = d.CABundle[:len(d.CABundle)-1] }, []error{ErrCertificate}},
		{"cabundle without root", func(d *document) { d.CABundle = d.CABundle[1:] }, []error{ErrUntrustedRoot}},
		{"cabundle empty", func(d *document) { d.CABundle = nil }, []error{ErrMalformed}},
		{"cabundle reversed", func(d *document) {
			for i, j := 1, len(d.CABundle)-1; i < j; i, j = i+1, j-1 {
				d.CABundle[i], d.CABundle[j] = d.CABundle[j], d.CABundle[i]
			}
		}, []error{ErrCertificate}},
		{"public_key", func(d *document) { d.PublicKey = flip(d.PublicKey, 7) }, []error{ErrSignature}},
		{"public_key removed", func(d *document) { d.PublicKey = nil }, []error{ErrSignature}},
		{"user_data", func(d *document) { d.UserData = flip(d.UserData, 1023) }, []error{ErrSignature}},
		{"nonce", func(d *document) { d.Nonce = flip(d.Nonce, 0) }, []error{ErrSignature}},
		{"nonce removed", func(d *document) { d.Nonce = nil }, []error{ErrSignature}},
	}
	for _, f := range fields {
		t.Run(f.name, func(t *testing.T) {
			td := copyDoc(d)
			f.mutate(td)
			_, err := Verify(rewrap(t, msg, td.marshal()), p)
			ok := false
			for _, w := range f.want {
				ok = ok || errors.Is(err, w)
			}
			if !ok {
				t.Errorf("got %v, want one of %v", err, f.want)
			}
		})
	}
	// Sanity: the untouched payload re-wrapped still verifies.
	if _, err := Verify(rewrap(t, msg, copyDoc(d).marshal()), p); err != nil {
		t.Fatalf("re-wrapped original: %v", err)
	}
}

func TestVerifyRealDocumentPolicy(t *testing.T) {
	raw := realDoc(t)
	_, d := splitDoc(t, raw)
	cases := []struct {
		name string
		p    Policy
		want error
	}{
		{"wrong nonce", Policy{Nonce: []byte("another nonce")}, ErrNonce},
		{"nonce one byte off", Policy{Nonce: append(bytes.Repeat([]byte{1}, 1023), 2)}, ErrNonce},
		{"empty expected nonce", Policy{Nonce: []byte{}}, ErrNonce},
		{"clock after leaf expiry", Policy{Now: at(nitroTime.Add(3*time.Hour + time.Minute))}, ErrCertificate},
		{"clock before leaf validity", Policy{Now: at(nitroTime.Add(-time.Minute))}, ErrCertificate},
		{"today", Policy{Now: time.Now}, ErrCertificate},
		{"stale", Policy{Now: at(nitroTime.Add(time.Hour)), MaxAge: 10 * time.Minute}, ErrStale},
		{"PCR0 not allowed", Policy{PCRs: map[int][][]byte{0: {make([]byte, 48)}}}, ErrPCR},
		{"PCR index absent", Policy{PCRs: map[int][][]byte{20: {make([]byte, 48)}}}, ErrPCR},
		{"PCR index with no values", Policy{PCRs: map[int][][]byte{0: nil}}, ErrPCR},
		{"pinned simulated root", Policy{RootFingerprint: bytes.Repeat([]byte{7}, 32)}, ErrUntrustedRoot},
		{"bad fingerprint length", Policy{RootFingerprint: []byte{1, 2, 3}}, ErrPolicy},
		{"negative MaxAge", Policy{MaxAge: -time.Second}, ErrPolicy},
		{"bad PCR index", Policy{PCRs: map[int][][]byte{32: nil}}, ErrPolicy},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.p.Now == nil {
				c.p.Now = at(nitroTime)
			}
			if _, err := Verify(raw, c.p); !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
	t.Run("PCR allow-list with several values", func(t *testing.T) {
		other := bytes.Repeat([]byte{0xaa}, 48)
		p := Policy{Now: at(nitroTime), PCRs: map[int][][]byte{
			0: {other, d.PCRs[0], make([]byte, 48)},
			1: {d.PCRs[1]},
			2: {other, d.PCRs[2]},
		}}
		if _, err := Verify(raw, p); err != nil {
			t.Errorf("one value matches: %v", err)
		}
		p.PCRs[2] = [][]byte{other, d.PCRs[1]}
		if _, err := Verify(raw, p); !errors.Is(err, ErrPCR) {
			t.Errorf("no value matches: got %v, want ErrPCR", err)
		}
	})
}

func TestVerifySimulated(t *testing.T) {
	nonce := []byte("client nonce 0123456789")
	doc, sim := simDoc(t, Request{Nonce: nonce, UserData: []byte("user data"), PublicKey: []byte("public key")})

	_, err := Verify(doc, Policy{Nonce: nonce})
	if !errors.Is(err, ErrSimulated) {
		t.Fatalf("strict policy: got %v, want ErrSimulated", err)
	}
	for _, s := range []string{"SIMULATED", "Policy.AllowSimulated", "development only"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("refusal %q does not mention %q", err, s)
		}
	}
	// Strict policy with the Nitro pin (what a production client sets).
	fpNitro, _ := hex.DecodeString(NitroRootFingerprint)
	if _, err := Verify(doc, Policy{RootFingerprint: fpNitro}); !errors.Is(err, ErrSimulated) {
		t.Errorf("strict policy, pinned AWS root: got %v, want ErrSimulated", err)
	}

	fp := sim.RootFingerprint()
	c, err := Verify(doc, Policy{AllowSimulated: true, Nonce: nonce, MaxAge: time.Minute, RootFingerprint: fp[:],
		PCRs: map[int][][]byte{0: {testPCR0}}})
	if err != nil {
		t.Fatalf("AllowSimulated: %v", err)
	}
	if !c.Simulated || c.Platform != PlatformSimulated || c.Debug {
		t.Errorf("simulated %v platform %q debug %v", c.Simulated, c.Platform, c.Debug)
	}
	if !strings.HasPrefix(c.ModuleID, "SIMULATED-") || c.ModuleID != sim.ModuleID() {
		t.Errorf("module_id %q", c.ModuleID)
	}
	if !strings.HasPrefix(c.String(), "SIMULATED") {
		t.Errorf("String() = %q", c.String())
	}
	if c.RootFingerprint != fp {
		t.Errorf("root fingerprint %x, want %x", c.RootFingerprint, fp)
	}
	if string(c.UserData) != "user data" || string(c.PublicKey) != "public key" || !bytes.Equal(c.Nonce, nonce) {
		t.Errorf("fields %q %q %q", c.UserData, c.PublicKey, c.Nonce)
	}
	if !bytes.Equal(c.PCRs[0], testPCR0) || len(c.PCRs) != 16 {
		t.Errorf("PCR0 %x, %d PCRs", c.PCRs[0], len(c.PCRs))
	}
	for i, v := range SimulatedPCRs(testPCR0) {
		if !bytes.Equal(c.PCRs[i], v) {
			t.Errorf("PCR%d = %x, want %x", i, c.PCRs[i], v)
		}
	}
	if time.Since(c.Timestamp) > time.Minute || c.Timestamp.After(time.Now()) {
		t.Errorf("timestamp %v", c.Timestamp)
	}

	// Wrong pinned root, or the AWS root pinned, refuses it.
	other := sha256.Sum256([]byte("another root"))
	for _, pin := range [][]byte{other[:], fpNitro} {
		if _, err := Verify(doc, Policy{AllowSimulated: true, RootFingerprint: pin}); !errors.Is(err, ErrUntrustedRoot) {
			t.Errorf("pin %x: got %v, want ErrUntrustedRoot", pin[:4], err)
		}
	}
	// Another simulated attester's documents fail this machine's pin.
	doc2, err := newTestSimulated(t).Attest(t.Context(), Request{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(doc2, Policy{AllowSimulated: true, RootFingerprint: fp[:]}); !errors.Is(err, ErrUntrustedRoot) {
		t.Errorf("other simulated root: got %v, want ErrUntrustedRoot", err)
	}
	if _, err := Verify(doc2, Policy{AllowSimulated: true}); err != nil {
		t.Errorf("other simulated root, no pin: %v", err)
	}

	// Policy checks apply to simulated documents as well.
	cases := []struct {
		name string
		p    Policy
		want error
	}{
		{"wrong nonce", Policy{Nonce: []byte("other")}, ErrNonce},
		{"stale", Policy{Now: at(time.Now().Add(30 * time.Minute)), MaxAge: 10 * time.Minute}, ErrStale},
		{"after leaf expiry", Policy{Now: at(time.Now().Add(4 * time.Hour))}, ErrCertificate},
		{"PCR0", Policy{PCRs: map[int][][]byte{0: {make([]byte, 48)}}}, ErrPCR},
	}
	for _, tc := range cases {
		tc.p.AllowSimulated = true
		if _, err := Verify(doc, tc.p); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}

	// Tampering with a simulated document's payload breaks its signature.
	msg, d := splitDoc(t, doc)
	td := copyDoc(d)
	td.UserData = []byte("user dat4")
	if _, err := Verify(rewrap(t, msg, td.marshal()), Policy{AllowSimulated: true}); !errors.Is(err, ErrSignature) {
		t.Errorf("tampered simulated doc: got %v, want ErrSignature", err)
	}
}

func TestVerifySimulatedDebug(t *testing.T) {
	s, err := NewSimulated(t.TempDir(), make([]byte, SimulatedPCRLen))
	if err != nil {
		t.Fatal(err)
	}
	// PCR1 and PCR2 are fixed non-zero markers, so a zero PCR0 alone is
	// not debug.
	doc, err := s.Attest(t.Context(), Request{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verify(doc, Policy{AllowSimulated: true})
	if err != nil || c.Debug {
		t.Fatalf("got %v, debug=%v", err, c != nil && c.Debug)
	}
}

// Documents chained to self-made roots are refused.
func TestVerifyForgedRoots(t *testing.T) {
	now := time.Now()
	_, shared := simDoc(t, Request{})
	// base has a Nitro document's measurements (SHA384, 48-byte PCRs);
	// simBase a simulated one's (SHA256, 32-byte PCRs).
	base := func() *document {
		pcrs := map[int][]byte{}
		for i := range 16 {
			pcrs[i] = bytes.Repeat([]byte{byte(i + 1)}, NitroPCRLen)
		}
		return &document{ModuleID: "i-0123456789abcdef0-enc0123456789abcdef", Digest: "SHA384",
			Timestamp: uint64(now.UnixMilli()), PCRs: pcrs}
	}
	simBase := func() *document {
		return &document{ModuleID: "SIMULATED-forged", Digest: "SHA256",
			Timestamp: uint64(now.UnixMilli()), PCRs: SimulatedPCRs(testPCR0)}
	}

	// A root that imitates AWS's, subject and all.
	awsName := pkix.Name{CommonName: "aws.nitro-enclaves", Organization: []string{"Amazon"}, OrganizationalUnit: []string{"AWS"}, Country: []string{"US"}}
	fake := newPKI(t, awsName, now.Add(-time.Hour), 24*time.Hour)
	doc := fake.sign(t, base())
	for _, p := range []Policy{{}, {AllowSimulated: true}, {AllowSimulated: true, AllowDebug: true}} {
		if _, err := Verify(doc, p); !errors.Is(err, ErrUntrustedRoot) {
			t.Errorf("imitated AWS root %+v: got %v, want ErrUntrustedRoot", p, err)
		}
	}
	// The same forged chain under the real AWS root's bytes: the root is
	// right, but the intermediate was not signed by it.
	d := base()
	fake.sign(t, d) // sets certificate and cabundle
	d.CABundle[0] = NitroRootCertificate().Raw
	doc = signPayload(t, fake.leafKey, d.marshal())
	if _, err := Verify(doc, Policy{}); !errors.Is(err, ErrCertificate) {
		t.Errorf("forged chain under AWS root: got %v, want ErrCertificate", err)
	}

	// A self-made root that calls itself a simulated one is a simulated
	// root: refused unless allowed, and refused under a pin.
	simName := pkix.Name{CommonName: SimulatedRootCommonName}
	sim := newPKI(t, simName, now.Add(-time.Hour), 24*time.Hour)
	d = simBase()
	doc = sim.sign(t, d)
	if _, err := Verify(doc, Policy{}); !errors.Is(err, ErrSimulated) {
		t.Errorf("self-made simulated root: got %v, want ErrSimulated", err)
	}
	fp := shared.RootFingerprint()
	if _, err := Verify(doc, Policy{AllowSimulated: true, RootFingerprint: fp[:]}); !errors.Is(err, ErrUntrustedRoot) {
		t.Errorf("self-made simulated root under pin: got %v, want ErrUntrustedRoot", err)
	}
	if _, err := Verify(doc, Policy{AllowSimulated: true}); err != nil {
		t.Errorf("self-made simulated root, allowed, no pin: %v", err)
	}
	// A simulated document must say so in its module_id.
	d = simBase()
	d.ModuleID = base().ModuleID
	doc = sim.sign(t, d)
	if _, err := Verify(doc, Policy{AllowSimulated: true}); !errors.Is(err, ErrMalformed) {
		t.Errorf("simulated root, Nitro-looking module_id: got %v, want ErrMalformed", err)
	}

	// Timestamps: more than ClockSkew in the future fails MaxAge; a
	// timestamp outside the leaf's validity always fails.
	d = simBase()
	d.Timestamp = uint64(now.Add(10 * time.Minute).UnixMilli())
	doc = sim.sign(t, d)
	if _, err := Verify(doc, Policy{AllowSimulated: true, MaxAge: time.Hour}); !errors.Is(err, ErrStale) {
		t.Errorf("future timestamp: got %v, want ErrStale", err)
	}
	if _, err := Verify(doc, Policy{AllowSimulated: true}); err != nil {
		t.Errorf("future timestamp without MaxAge: %v", err)
	}
	d.Timestamp = uint64(now.Add(-2 * time.Hour).UnixMilli())
	doc = sim.sign(t, d)
	if _, err := Verify(doc, Policy{AllowSimulated: true}); !errors.Is(err, ErrCertificate) {
		t.Errorf("timestamp before leaf validity: got %v, want ErrCertificate", err)
	}
}

func TestVerifyGarbage(t *testing.T) {
	real := realDoc(t)
	inputs := map[string][]byte{
		"nil":          nil,
		"empty":        {},
		"null":         {0xf6},
		"array0":       {0x80},
		"array4 nulls": {0x84, 0xf6, 0xf6, 0xf6, 0xf6},
		"text":         []byte("hello"),
		"truncated":    real[:len(real)/2],
		"trailing":     append(bytes.Clone(real), 0x00),
		"too large":    make([]byte, MaxDocumentLen+1),
		"wrong tag":    append([]byte{0xd8, 0x62}, real...),
		"tag 18 twice": append([]byte{0xd2, 0xd2}, real...),
	}
	for name, in := range inputs {
		if c, err := Verify(in, Policy{Now: at(nitroTime)}); err == nil || c != nil || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, %v; want ErrMalformed", name, c, err)
		}
	}
}

func TestVerifyEnvelope(t *testing.T) {
	raw := realDoc(t)
	msg, _ := splitDoc(t, raw)
	p := Policy{Now: at(nitroTime)}
	build := func(h cose.Headers, payload, sig []byte) []byte {
		m := cose.UntaggedSign1Message{Headers: h, Payload: payload, Signature: sig}
		out, err := m.MarshalCBOR()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	es384 := cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES384}
	cases := map[string][]byte{
		"unprotected kid": build(cose.Headers{RawProtected: msg.Headers.RawProtected,
			Unprotected: cose.UnprotectedHeader{cose.HeaderLabelKeyID: []byte("k")}}, msg.Payload, msg.Signature),
		"extra protected header": build(cose.Headers{Protected: cose.ProtectedHeader{
			cose.HeaderLabelAlgorithm: cose.AlgorithmES384, cose.HeaderLabelContentType: "application/cbor"}}, msg.Payload, msg.Signature),
		"ES256":             build(cose.Headers{Protected: cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES256}}, msg.Payload, msg.Signature),
		"no alg":            build(cose.Headers{Protected: cose.ProtectedHeader{cose.HeaderLabelContentType: "application/cbor"}}, msg.Payload, msg.Signature),
		"detached payload":  build(cose.Headers{Protected: es384}, nil, msg.Signature),
		"short signature":   build(cose.Headers{Protected: es384}, msg.Payload, msg.Signature[:95]),
		"long signature":    build(cose.Headers{Protected: es384}, msg.Payload, append(bytes.Clone(msg.Signature), 0)),
		"empty payload":     build(cose.Headers{Protected: es384}, []byte{}, msg.Signature),
		"payload too large": build(cose.Headers{Protected: es384}, make([]byte, MaxPayloadLen+1), msg.Signature),
	}
	for name, doc := range cases {
		if _, err := Verify(doc, p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	// Re-encoding the same protected header (a1 01 38 22) keeps it valid.
	if _, err := Verify(build(cose.Headers{Protected: es384}, msg.Payload, msg.Signature), p); err != nil {
		t.Errorf("re-encoded envelope: %v", err)
	}
}

// A simulated document declares SHA256 and 32-byte PCRs; anything else under
// a simulated root is malformed, and the SHA-256 layout is accepted only for
// a document verified as simulated, under a policy that allows them.
func TestVerifySimulatedMeasurements(t *testing.T) {
	now := time.Now()
	sim := newPKI(t, pkix.Name{CommonName: SimulatedRootCommonName}, now.Add(-time.Hour), 24*time.Hour)
	good := func() *document {
		return &document{ModuleID: "SIMULATED-test", Digest: "SHA256", Timestamp: uint64(now.UnixMilli()), PCRs: SimulatedPCRs(testPCR0)}
	}
	if c, err := Verify(sim.sign(t, good()), Policy{AllowSimulated: true}); err != nil || c.Digest != "SHA256" || len(c.PCRs[0]) != 32 {
		t.Fatalf("well-formed simulated document: %v %+v", err, c)
	}
	if _, err := Verify(sim.sign(t, good()), Policy{}); !errors.Is(err, ErrSimulated) {
		t.Errorf("strict policy: got %v, want ErrSimulated", err)
	}
	for name, mutate := range map[string]func(*document){
		"digest SHA384": func(d *document) { d.Digest = "SHA384" },
		"48-byte PCR0":  func(d *document) { d.PCRs[0] = make([]byte, 48) },
		"Nitro layout": func(d *document) {
			d.Digest = "SHA384"
			for i := range d.PCRs {
				d.PCRs[i] = make([]byte, 48)
			}
			d.PCRs[0] = bytes.Repeat([]byte{1}, 48)
		},
		"64-byte PCR": func(d *document) { d.PCRs[5] = make([]byte, 64) },
	} {
		d := good()
		mutate(d)
		if _, err := Verify(sim.sign(t, d), Policy{AllowSimulated: true, AllowDebug: true}); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	// The real simulated backend produces exactly this layout.
	doc, _ := simDoc(t, Request{})
	c, err := Verify(doc, Policy{AllowSimulated: true})
	if err != nil || c.Digest != "SHA256" {
		t.Fatalf("simulated backend: %v", err)
	}
	for i, v := range c.PCRs {
		if len(v) != SimulatedPCRLen {
			t.Errorf("PCR%d is %d bytes", i, len(v))
		}
	}
}
