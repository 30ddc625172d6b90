package attest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/veraison/go-cose"
)

// testdataDir holds the project's real Nitro test vectors (see its README).
const testdataDir = "../testdata/nitro"

// The fixed clocks at which the real documents verify: their timestamps.
var (
	nitroTime      = time.Date(2024, time.September, 7, 14, 37, 39, 545000000, time.UTC)
	nitroDebugTime = time.Date(2024, time.September, 7, 14, 38, 6, 508000000, time.UTC)
)

func at(t time.Time) func() time.Time { return func() time.Time { return t } }

func readB64(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func realDoc(tb testing.TB) []byte      { return readB64(tb, "nitro_attestation.b64") }
func realDebugDoc(tb testing.TB) []byte { return readB64(tb, "nitro_attestation_debug.b64") }

// testPCR0 stands for the SHA-256 of a vouch binary.
var testPCR0 = func() []byte { s := sha256.Sum256([]byte("vouch test binary")); return s[:] }()

// newTestSimulated returns a simulated attester in a fresh directory.
func newTestSimulated(tb testing.TB) *Simulated {
	tb.Helper()
	s, err := NewSimulated(tb.TempDir(), testPCR0)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

var (
	sharedSimOnce sync.Once
	sharedSim     *Simulated
	sharedSimDir  string
)

// simDoc returns a fresh document from one simulated attester shared by the
// tests (creating a root costs a key generation).
func simDoc(tb testing.TB, req Request) ([]byte, *Simulated) {
	tb.Helper()
	sharedSimOnce.Do(func() {
		dir, err := os.MkdirTemp("", "attest-test-sim")
		if err != nil {
			tb.Fatal(err)
		}
		sharedSimDir = dir
		sharedSim, err = NewSimulated(dir, testPCR0)
		if err != nil {
			tb.Fatal(err)
		}
	})
	doc, err := sharedSim.Attest(context.Background(), req)
	if err != nil {
		tb.Fatal(err)
	}
	return doc, sharedSim
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedSimDir != "" {
		os.RemoveAll(sharedSimDir)
	}
	os.Exit(code)
}

// splitDoc decodes an untagged or tagged COSE_Sign1 document and its payload.
func splitDoc(tb testing.TB, raw []byte) (*cose.Sign1Message, *document) {
	tb.Helper()
	msg, err := decodeSign1(raw)
	if err != nil {
		tb.Fatal(err)
	}
	d, err := parseDocument(msg.Payload)
	if err != nil {
		tb.Fatal(err)
	}
	return msg, d
}

// rewrap replaces the payload of msg without re-signing it.
func rewrap(tb testing.TB, msg *cose.Sign1Message, payload []byte) []byte {
	tb.Helper()
	m := cose.UntaggedSign1Message{Headers: msg.Headers, Payload: payload, Signature: bytes.Clone(msg.Signature)}
	out, err := m.MarshalCBOR()
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// pki is a hand-made certificate chain for forged documents.
type pki struct {
	root, inter, leaf *x509.Certificate
	leafKey           *ecdsa.PrivateKey
}

// newPKI makes root -> intermediate -> leaf with the given root subject,
// valid from notBefore for the given lifetime.
func newPKI(tb testing.TB, rootSubject pkix.Name, notBefore time.Time, life time.Duration) *pki {
	tb.Helper()
	gen := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		return k
	}
	rk, ik, lk := gen(), gen(), gen()
	rootT := &x509.Certificate{Subject: rootSubject, NotBefore: notBefore, NotAfter: notBefore.Add(life),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	root, err := issue(rootT, rootT, &rk.PublicKey, rk)
	if err != nil {
		tb.Fatal(err)
	}
	interT := &x509.Certificate{Subject: pkix.Name{CommonName: "forged intermediate"}, NotBefore: notBefore, NotAfter: notBefore.Add(life),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	inter, err := issue(interT, root, &ik.PublicKey, rk)
	if err != nil {
		tb.Fatal(err)
	}
	leafT := &x509.Certificate{Subject: pkix.Name{CommonName: "forged leaf"}, NotBefore: notBefore, NotAfter: notBefore.Add(life),
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature}
	leaf, err := issue(leafT, inter, &lk.PublicKey, ik)
	if err != nil {
		tb.Fatal(err)
	}
	return &pki{root: root, inter: inter, leaf: leaf, leafKey: lk}
}

// sign makes a document with payload d (its certificate and cabundle set
// from the pki) signed by the pki's leaf.
func (p *pki) sign(tb testing.TB, d *document) []byte {
	tb.Helper()
	d.Certificate = p.leaf.Raw
	d.CABundle = [][]byte{p.root.Raw, p.inter.Raw}
	return signPayload(tb, p.leafKey, d.marshal())
}

func signPayload(tb testing.TB, key *ecdsa.PrivateKey, payload []byte) []byte {
	tb.Helper()
	signer, err := cose.NewSigner(cose.AlgorithmES384, key)
	if err != nil {
		tb.Fatal(err)
	}
	h := cose.Headers{Protected: cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES384}}
	out, err := cose.Sign1Untagged(rand.Reader, signer, h, payload, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// copyDoc returns a deep copy of d.
func copyDoc(d *document) *document {
	c := *d
	c.PCRs = make(map[int][]byte, len(d.PCRs))
	for i, v := range d.PCRs {
		c.PCRs[i] = bytes.Clone(v)
	}
	c.Certificate = bytes.Clone(d.Certificate)
	c.CABundle = nil
	for _, e := range d.CABundle {
		c.CABundle = append(c.CABundle, bytes.Clone(e))
	}
	c.PublicKey = bytes.Clone(d.PublicKey)
	c.UserData = bytes.Clone(d.UserData)
	c.Nonce = bytes.Clone(d.Nonce)
	return &c
}
