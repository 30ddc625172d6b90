package attest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/veraison/go-cose"
)

// es384SignatureLen is the length of an ES384 COSE signature (r || s).
const es384SignatureLen = 96

// simulatedRefusal is the error text for a simulated document under a
// policy that does not allow them.
const simulatedRefusal = "refusing it (allow simulated attestation explicitly, with Policy.AllowSimulated, for development only)"

// Verify checks doc, a COSE_Sign1 attestation document, against p and
// returns what it says. It accepts real AWS Nitro documents chained to the
// pinned AWS root and, only if p.AllowSimulated is set, documents of the
// simulated backend. Every error wraps one of the package's sentinel errors
// (ErrMalformed, ErrSignature, ErrCertificate, ErrUntrustedRoot, ErrSimulated,
// ErrDebug, ErrPCR, ErrNonce, ErrStale, ErrPolicy). Verify never panics.
func Verify(doc []byte, p Policy) (c *Claims, err error) {
	defer func() {
		// Fail closed should a dependency ever panic on hostile input;
		// FuzzVerify calls verify directly, so panics still show up there.
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("%w: internal error while decoding: %v", ErrMalformed, r)
		}
	}()
	return verify(doc, &p)
}

func verify(raw []byte, p *Policy) (*Claims, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	now := p.now()

	msg, err := decodeSign1(raw)
	if err != nil {
		return nil, err
	}
	doc, err := parseDocument(msg.Payload)
	if err != nil {
		return nil, err
	}

	// Certificates.
	leaf, err := x509.ParseCertificate(doc.Certificate)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %v", ErrMalformed, err)
	}
	bundle := make([]*x509.Certificate, len(doc.CABundle))
	for i, der := range doc.CABundle {
		if bundle[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("%w: cabundle entry %d: %v", ErrMalformed, i, err)
		}
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return nil, fmt.Errorf("%w: leaf certificate key is not ECDSA P-384", ErrCertificate)
	}
	if leaf.IsCA || leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, fmt.Errorf("%w: leaf certificate is not a signing end-entity certificate", ErrCertificate)
	}

	// Root: the pinned AWS root, or (only if allowed) a simulated root.
	root := bundle[0]
	fp := sha256.Sum256(root.Raw)
	simulated := false
	switch {
	case bytes.Equal(root.Raw, nitroRoot.Raw):
	case isSimulatedRoot(root):
		simulated = true
		if !p.AllowSimulated {
			return nil, fmt.Errorf("%w; %s", ErrSimulated, simulatedRefusal)
		}
	default:
		return nil, fmt.Errorf("%w: certificate chain ends at %q (SHA-256 %x), not at the AWS Nitro Enclaves root (SHA-256 %s)",
			ErrUntrustedRoot, root.Subject.String(), fp, NitroRootFingerprint)
	}
	// Measurements: a Nitro document uses SHA-384 and 48-byte PCRs, as the
	// Nitro Secure Module always does; a simulated document (accepted only
	// when the policy allows simulated ones, above) uses SHA-256 and 32-byte
	// PCRs, so that PCR0 is what `sha256sum vouch` prints.
	if err := checkMeasurements(doc, simulated); err != nil {
		return nil, err
	}
	if p.RootFingerprint != nil && subtle.ConstantTimeCompare(fp[:], p.RootFingerprint) != 1 {
		kind := "AWS Nitro"
		if simulated {
			kind = "SIMULATED"
		}
		return nil, fmt.Errorf("%w: %s root has SHA-256 %x, but the policy pins %x", ErrUntrustedRoot, kind, fp, p.RootFingerprint)
	}
	if err := verifyChain(leaf, bundle, now); err != nil {
		return nil, err
	}

	// Signature, with the leaf's key, over the original protected header
	// and payload bytes.
	verifier, err := cose.NewVerifier(cose.AlgorithmES384, pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCertificate, err)
	}
	if err := msg.Verify(nil, verifier); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}

	// Contents.
	if simulated && !strings.HasPrefix(doc.ModuleID, simulatedModulePrefix) {
		return nil, fmt.Errorf("%w: simulated document's module_id %q does not start with %q", ErrMalformed, doc.ModuleID, simulatedModulePrefix)
	}
	ts := time.UnixMilli(int64(doc.Timestamp)).UTC()
	// The document is made while its (freshly issued) leaf is valid; allow
	// ClockSkew for the second granularity of certificate times.
	if ts.Before(leaf.NotBefore.Add(-ClockSkew)) || ts.After(leaf.NotAfter.Add(ClockSkew)) {
		return nil, fmt.Errorf("%w: document timestamp %s is outside its certificate's validity (%s to %s)",
			ErrCertificate, ts.Format(time.RFC3339Nano), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	c := &Claims{
		Platform:        PlatformNitro,
		Simulated:       simulated,
		Debug:           isDebug(doc.PCRs),
		ModuleID:        doc.ModuleID,
		Digest:          doc.Digest,
		Timestamp:       ts,
		PCRs:            doc.PCRs,
		PublicKey:       doc.PublicKey,
		UserData:        doc.UserData,
		Nonce:           doc.Nonce,
		RootFingerprint: fp,
		LeafCertificate: leaf,
	}
	if simulated {
		c.Platform = PlatformSimulated
	}

	// Policy.
	if c.Debug && !p.AllowDebug {
		return nil, fmt.Errorf("%w (PCR0, PCR1 and PCR2 are zero): its measurements mean nothing; refusing it (allow debug enclaves explicitly, for development only)", ErrDebug)
	}
	for i, allowed := range p.PCRs {
		got, ok := c.PCRs[i]
		if !ok {
			return nil, fmt.Errorf("%w: document has no PCR%d", ErrPCR, i)
		}
		match := false
		for _, want := range allowed {
			if bytes.Equal(got, want) {
				match = true
				break
			}
		}
		if !match {
			return nil, fmt.Errorf("%w: PCR%d is %x, not one of the %d allowed values", ErrPCR, i, got, len(allowed))
		}
	}
	if p.Nonce != nil && subtle.ConstantTimeCompare(c.Nonce, p.Nonce) != 1 {
		return nil, fmt.Errorf("%w: the document was not made for this request", ErrNonce)
	}
	if p.MaxAge > 0 {
		if age := now.Sub(ts); age > p.MaxAge {
			return nil, fmt.Errorf("%w: made %s ago, at most %s allowed", ErrStale, age.Round(time.Millisecond), p.MaxAge)
		}
		if ahead := ts.Sub(now); ahead > ClockSkew {
			return nil, fmt.Errorf("%w: timestamp is %s in the future", ErrStale, ahead.Round(time.Millisecond))
		}
	}
	return c, nil
}

// decodeSign1 decodes a tagged or untagged COSE_Sign1 and checks its
// envelope: protected header exactly {alg: ES384}, empty unprotected header,
// an attached payload of at most MaxPayloadLen bytes and a 96-byte
// signature.
func decodeSign1(raw []byte) (*cose.Sign1Message, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: empty document", ErrMalformed)
	}
	if len(raw) > MaxDocumentLen {
		return nil, fmt.Errorf("%w: document is %d bytes, at most %d allowed", ErrMalformed, len(raw), MaxDocumentLen)
	}
	var msg cose.Sign1Message
	var err error
	switch raw[0] {
	case 0xd2: // tag 18, COSE_Sign1_Tagged
		err = msg.UnmarshalCBOR(raw)
	case 0x84: // array of 4, as the Nitro Secure Module emits it
		err = (*cose.UntaggedSign1Message)(&msg).UnmarshalCBOR(raw)
	default:
		return nil, fmt.Errorf("%w: not a COSE_Sign1 structure", ErrMalformed)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: COSE_Sign1: %v", ErrMalformed, err)
	}
	alg, err := msg.Headers.Protected.Algorithm()
	if err != nil {
		return nil, fmt.Errorf("%w: protected header: %v", ErrMalformed, err)
	}
	if alg != cose.AlgorithmES384 || len(msg.Headers.Protected) != 1 {
		return nil, fmt.Errorf("%w: protected header must be exactly {alg: ES384}", ErrMalformed)
	}
	if len(msg.Headers.Unprotected) != 0 {
		return nil, fmt.Errorf("%w: unprotected header must be empty", ErrMalformed)
	}
	if msg.Payload == nil {
		return nil, fmt.Errorf("%w: detached payload", ErrMalformed)
	}
	if len(msg.Signature) != es384SignatureLen {
		return nil, fmt.Errorf("%w: signature is %d bytes, want %d", ErrMalformed, len(msg.Signature), es384SignatureLen)
	}
	return &msg, nil
}

// verifyChain checks that leaf, bundle[n-1], ..., bundle[1], bundle[0] is a
// valid certification path at now, in exactly the order Nitro documents
// give it (the CA bundle lists the root first).
func verifyChain(leaf *x509.Certificate, bundle []*x509.Certificate, now time.Time) error {
	roots := x509.NewCertPool()
	roots.AddCert(bundle[0])
	inter := x509.NewCertPool()
	for _, c := range bundle[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCertificate, err)
	}
	for _, chain := range chains {
		if len(chain) != len(bundle)+1 {
			continue
		}
		ok := true
		for i, c := range chain[1:] {
			if !bytes.Equal(c.Raw, bundle[len(bundle)-1-i].Raw) {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("%w: certificate chain does not follow the CA bundle (root first, then each issuer of the next)", ErrCertificate)
}

// checkMeasurements requires the digest and PCR sizes of the document's
// kind: "SHA384" with 48-byte PCRs for Nitro, "SHA256" with 32-byte PCRs for
// a simulated document.
func checkMeasurements(doc *document, simulated bool) error {
	digest, size, kind := digestSHA384, NitroPCRLen, "an AWS Nitro"
	if simulated {
		digest, size, kind = digestSHA256, SimulatedPCRLen, "a SIMULATED"
	}
	if doc.Digest != digest {
		return fmt.Errorf("%w: %s document must have digest %q, not %q", ErrMalformed, kind, digest, doc.Digest)
	}
	for i, v := range doc.PCRs {
		if len(v) != size {
			return fmt.Errorf("%w: %s document's PCRs are %d bytes (%s), but PCR%d is %d bytes", ErrMalformed, kind, size, digest, i, len(v))
		}
	}
	return nil
}

// isSimulatedRoot reports whether c is a self-signed CA whose CommonName
// marks it as a vouch simulated attestation root.
func isSimulatedRoot(c *x509.Certificate) bool {
	return c.IsCA &&
		strings.Contains(c.Subject.CommonName, SimulatedRootCommonName) &&
		bytes.Equal(c.RawSubject, c.RawIssuer) &&
		c.CheckSignatureFrom(c) == nil
}

// isDebug reports whether PCR0, PCR1 and PCR2 are all zero or absent, as in a
// Nitro debug enclave.
func isDebug(pcrs map[int][]byte) bool {
	for i := 0; i <= 2; i++ {
		for _, b := range pcrs[i] {
			if b != 0 {
				return false
			}
		}
	}
	return true
}
