package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSimulatedRootPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created by NewSimulated
	s1, err := NewSimulated(dir, testPCR0)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, SimulatedRootFile)
	if runtime.GOOS != "windows" {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", path, st.Mode().Perm())
		}
		if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("data dir mode %v, %v; want 0700", st.Mode().Perm(), err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("data dir holds %d entries, want only the root file", len(entries))
		}
	}
	root := s1.RootCertificate()
	if !strings.Contains(root.Subject.CommonName, "vouch SIMULATED attestation root") || !root.IsCA {
		t.Errorf("root subject %q IsCA %v", root.Subject.CommonName, root.IsCA)
	}
	if root.PublicKeyAlgorithm.String() != "ECDSA" || root.SignatureAlgorithm.String() != "ECDSA-SHA384" {
		t.Errorf("root key %v signature %v", root.PublicKeyAlgorithm, root.SignatureAlgorithm)
	}
	content, _ := os.ReadFile(path)

	s2, err := NewSimulated(dir, testPCR0)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if s1.RootFingerprint() != s2.RootFingerprint() {
		t.Fatalf("reloaded root fingerprint %x, want %x", s2.RootFingerprint(), s1.RootFingerprint())
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, content) {
		t.Error("reload rewrote the root file")
	}
	// A document of the reloaded attester verifies under the first one's pin.
	doc, err := s2.Attest(t.Context(), Request{})
	if err != nil {
		t.Fatal(err)
	}
	fp := s1.RootFingerprint()
	if _, err := Verify(doc, Policy{AllowSimulated: true, RootFingerprint: fp[:]}); err != nil {
		t.Errorf("reloaded attester's document: %v", err)
	}
}

func TestSimulatedRootFileProblems(t *testing.T) {
	if _, err := NewSimulated(t.TempDir(), make([]byte, 48)); err == nil {
		t.Error("accepted a 48-byte PCR0")
	}
	if _, err := NewSimulated(t.TempDir(), testPCR0[:31]); err == nil {
		t.Error("accepted a 31-byte PCR0")
	}
	if _, err := NewSimulated("", testPCR0); err == nil {
		t.Error("accepted an empty data dir")
	}

	write := func(t *testing.T, content []byte, mode os.FileMode) string {
		dir := t.TempDir()
		path := filepath.Join(dir, SimulatedRootFile)
		if err := os.WriteFile(path, content, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	good, err := os.ReadFile(filepath.Join(sharedSimDirOrInit(t), SimulatedRootFile))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		content []byte
		mode    os.FileMode
	}{
		"garbage":        {[]byte("not PEM"), 0o600},
		"cert only":      {good[:bytes.Index(good, []byte("-----BEGIN PRIVATE KEY"))], 0o600},
		"key only":       {good[bytes.Index(good, []byte("-----BEGIN PRIVATE KEY")):], 0o600},
		"AWS root + key": {append(bytes.Clone(NitroRootPEM()), good[bytes.Index(good, []byte("-----BEGIN PRIVATE KEY")):]...), 0o600},
	}
	if runtime.GOOS != "windows" {
		cases["world readable"] = struct {
			content []byte
			mode    os.FileMode
		}{good, 0o644}
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := write(t, c.content, c.mode)
			if _, err := NewSimulated(dir, testPCR0); err == nil {
				t.Fatal("accepted")
			} else if testing.Verbose() {
				t.Log(err)
			}
			after, _ := os.ReadFile(filepath.Join(dir, SimulatedRootFile))
			if !bytes.Equal(after, c.content) {
				t.Error("the bad root file was overwritten")
			}
		})
	}
}

func sharedSimDirOrInit(tb testing.TB) string {
	simDoc(tb, Request{})
	return sharedSimDir
}

// The simulated document has the Nitro envelope and payload layout.
func TestSimulatedDocumentLayout(t *testing.T) {
	doc, sim := simDoc(t, Request{})
	// Untagged COSE_Sign1, protected {1: -35}, unprotected {}, as Nitro.
	if !bytes.HasPrefix(doc, []byte{0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0}) {
		t.Fatalf("envelope %x", doc[:8])
	}
	msg, d := splitDoc(t, doc)
	if len(msg.Signature) != 96 {
		t.Errorf("signature is %d bytes", len(msg.Signature))
	}
	// Field order and types are Nitro's; absent fields are null.
	r := &cborReader{b: msg.Payload}
	n, err := r.count(majorMap)
	if err != nil || n != 9 {
		t.Fatalf("payload map of %d: %v", n, err)
	}
	wantOrder := []string{"module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle", "public_key", "user_data", "nonce"}
	var real []string
	realMsg, _ := splitDoc(t, realDoc(t))
	rr := &cborReader{b: realMsg.Payload}
	rn, _ := rr.count(majorMap)
	var dummy document
	for range rn {
		k, _ := rr.text()
		real = append(real, k)
		if err := dummy.decodeField(rr, k); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(real, ",") != strings.Join(wantOrder, ",") {
		t.Fatalf("real order %v", real)
	}
	for i := range n {
		k, err := r.text()
		if err != nil || k != wantOrder[i] {
			t.Fatalf("field %d is %q (%v), want %q", i, k, err, wantOrder[i])
		}
		if i >= 6 {
			if r.b[r.off] != cborNull {
				t.Errorf("%s is 0x%02x, want null", k, r.b[r.off])
			}
		}
		var tmp document
		if err := tmp.decodeField(r, k); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.HasPrefix(d.ModuleID, "SIMULATED-") || d.Digest != "SHA256" {
		t.Errorf("module_id %q digest %q", d.ModuleID, d.Digest)
	}
	if len(d.PCRs) != 16 {
		t.Errorf("%d PCRs", len(d.PCRs))
	}
	p1, p2 := sha256.Sum256([]byte("vouch SIMULATED PCR1")), sha256.Sum256([]byte("vouch SIMULATED PCR2"))
	if !bytes.Equal(d.PCRs[0], testPCR0) || !bytes.Equal(d.PCRs[1], p1[:]) || !bytes.Equal(d.PCRs[2], p2[:]) || !bytes.Equal(d.PCRs[15], make([]byte, 32)) {
		t.Errorf("PCRs %x", d.PCRs)
	}
	if len(d.CABundle) != 2 || !bytes.Equal(d.CABundle[0], sim.RootCertificate().Raw) {
		t.Errorf("cabundle of %d, root first: %v", len(d.CABundle), len(d.CABundle) > 0 && bytes.Equal(d.CABundle[0], sim.RootCertificate().Raw))
	}
	for i, c := range append([][]byte{d.Certificate}, d.CABundle...) {
		if len(c) > MaxCertLen {
			t.Errorf("certificate %d is %d bytes", i, len(c))
		}
	}
	if d.PublicKey != nil || d.UserData != nil || d.Nonce != nil {
		t.Error("absent fields decoded as non-nil")
	}
	// And the payload is exactly what marshal produces (shortest form).
	if !bytes.Equal(d.marshal(), msg.Payload) {
		t.Error("payload is not in canonical Nitro encoding")
	}
}

func TestSimulatedLeafReuse(t *testing.T) {
	s := newTestSimulated(t)
	base := time.Now()
	clock := base
	s.now = func() time.Time { return clock }
	leafOf := func() []byte {
		doc, err := s.Attest(t.Context(), Request{Nonce: []byte{1}})
		if err != nil {
			t.Fatal(err)
		}
		_, d := splitDoc(t, doc)
		c, err := Verify(doc, Policy{AllowSimulated: true, Now: at(clock), MaxAge: time.Second})
		if err != nil {
			t.Fatalf("at %v: %v", clock.Sub(base), err)
		}
		if !c.Timestamp.Equal(time.UnixMilli(clock.UnixMilli())) {
			t.Errorf("timestamp %v, want %v", c.Timestamp, clock)
		}
		return d.Certificate
	}
	first := leafOf()
	clock = base.Add(59 * time.Minute)
	if !bytes.Equal(leafOf(), first) {
		t.Error("leaf re-issued within its reuse period")
	}
	// A document made at the end of the reuse period stays valid >= 2h.
	doc, _ := s.Attest(t.Context(), Request{})
	if _, err := Verify(doc, Policy{AllowSimulated: true, Now: at(clock.Add(2 * time.Hour))}); err != nil {
		t.Errorf("2h later: %v", err)
	}
	clock = base.Add(61 * time.Minute)
	second := leafOf()
	if bytes.Equal(second, first) {
		t.Error("leaf not re-issued after an hour")
	}
	// Far in the future the intermediate is re-issued as well.
	clock = base.Add(40 * 24 * time.Hour)
	leafOf()
	// A clock that jumps back re-issues rather than signing outside validity.
	clock = base.Add(-30 * time.Second)
	leafOf()
}

func TestSimulatedRequests(t *testing.T) {
	s := newTestSimulated(t)
	big := make([]byte, 1025)
	for _, r := range []Request{{Nonce: big}, {UserData: big}, {PublicKey: big}} {
		if _, err := s.Attest(t.Context(), r); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("oversized request: got %v, want ErrInvalidRequest", err)
		}
	}
	full := Request{Nonce: make([]byte, 1024), UserData: make([]byte, 1024), PublicKey: make([]byte, 1024)}
	doc, err := s.Attest(t.Context(), full)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verify(doc, Policy{AllowSimulated: true, Nonce: make([]byte, 1024)})
	if err != nil || len(c.UserData) != 1024 || len(c.PublicKey) != 1024 {
		t.Errorf("maximal request: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Attest(ctx, Request{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v", err)
	}
	if s.Platform() != PlatformSimulated {
		t.Errorf("platform %q", s.Platform())
	}
	// PCRs returns a copy.
	s.PCRs()[0][0] ^= 0xff
	if !bytes.Equal(s.PCRs()[0], testPCR0) {
		t.Error("PCRs() exposes internal state")
	}
}

func TestSimulatedConcurrent(t *testing.T) {
	_, s := simDoc(t, Request{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nonce := []byte{byte(i)}
			doc, err := s.Attest(context.Background(), Request{Nonce: nonce})
			if err == nil {
				_, err = Verify(doc, Policy{AllowSimulated: true, Nonce: nonce})
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// Two attesters created at once on a fresh directory end up with one root.
func TestSimulatedCreateRace(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	sims := make([]*Simulated, 4)
	errs := make([]error, 4)
	for i := range sims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sims[i], errs[i] = NewSimulated(dir, testPCR0)
		}()
	}
	wg.Wait()
	for i := range sims {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	final, err := NewSimulated(dir, testPCR0)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range sims {
		if s.RootFingerprint() != final.RootFingerprint() {
			t.Errorf("attester %d has a root that is not the stored one", i)
		}
	}
}

func TestExecutableDigest(t *testing.T) {
	d, err := ExecutableDigest()
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	want, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(want)
	if len(d) != SimulatedPCRLen || !bytes.Equal(d, sum[:]) {
		t.Errorf("ExecutableDigest = %x, want SHA-256 of %s (what sha256sum prints)", d, exe)
	}
	// It is accepted as PCR0 and is what the document carries.
	s, err := NewSimulated(t.TempDir(), d)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := s.Attest(t.Context(), Request{})
	c, err := Verify(doc, Policy{AllowSimulated: true, PCRs: map[int][][]byte{0: {d}}})
	if err != nil || !bytes.Equal(c.PCRs[0], d) {
		t.Errorf("PCR0 = %x, %v", c.PCRs[0], err)
	}
	if _, err := FileDigest(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("FileDigest of a missing file succeeded")
	}
}
