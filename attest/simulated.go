package attest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/vouch-dev/vouch/internal/secretfile"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/veraison/go-cose"
)

const (
	// SimulatedRootCommonName is contained in the CommonName of every
	// simulated root; Verify treats a self-signed CA with this in its
	// CommonName as a simulated root.
	SimulatedRootCommonName = "vouch SIMULATED attestation root"
	// SimulatedRootFile is the file, under the data directory given to
	// NewSimulated, that holds the simulated root: its certificate and its
	// PKCS#8 private key, PEM encoded, mode 0600.
	SimulatedRootFile = "attest-simulated-root.pem"
	// SimulatedPCRLen is the length of every PCR of a simulated document:
	// SHA-256, so that PCR0 is what `sha256sum vouch` prints. Simulated
	// documents declare the digest "SHA256".
	SimulatedPCRLen = sha256.Size
	// NitroPCRLen is the length of every PCR of a Nitro document: SHA-384,
	// with the digest "SHA384".
	NitroPCRLen = sha512.Size384

	simulatedModulePrefix      = "SIMULATED-"
	simulatedRootLifetime      = 20 * 365 * 24 * time.Hour
	simulatedInterLifetime     = 30 * 24 * time.Hour
	simulatedLeafLifetime      = 3 * time.Hour // as Nitro's leaf certificates
	simulatedLeafReuse         = time.Hour     // re-issue after this, so each document stays valid >= 2h
	simulatedBackdate          = time.Minute
	simulatedPCRCount          = 16 // PCR0..PCR15, as Nitro reports
	simulatedIntermediateName  = "vouch SIMULATED attestation intermediate"
	simulatedLeafNamePrefix    = "vouch SIMULATED attestation signer "
	simulatedOrganization      = "vouch SIMULATED"
	pemTypeCertificate         = "CERTIFICATE"
	pemTypePrivateKey          = "PRIVATE KEY"
	simulatedRootFileMaxLength = 64 << 10
)

// SimulatedPCRs returns the PCRs of a simulated document made by
// NewSimulated(dir, pcr0): PCR0 = pcr0, PCR1 = SHA-256("vouch SIMULATED
// PCR1"), PCR2 = SHA-256("vouch SIMULATED PCR2") and PCR3..PCR15 = 32 zero
// bytes. A verifier can build a Policy.PCRs allow-list from it.
func SimulatedPCRs(pcr0 []byte) map[int][]byte {
	pcrs := make(map[int][]byte, simulatedPCRCount)
	pcrs[0] = bytes.Clone(pcr0)
	for i := 1; i < simulatedPCRCount; i++ {
		pcrs[i] = make([]byte, SimulatedPCRLen)
	}
	p1 := sha256.Sum256([]byte("vouch SIMULATED PCR1"))
	p2 := sha256.Sum256([]byte("vouch SIMULATED PCR2"))
	pcrs[1], pcrs[2] = p1[:], p2[:]
	return pcrs
}

// Simulated is the simulated attestation backend: it signs Nitro-format
// documents with a local root CA. Its documents say SIMULATED everywhere and
// Verify refuses them unless Policy.AllowSimulated is set. It is safe for
// concurrent use.
type Simulated struct {
	root     *x509.Certificate
	rootKey  *ecdsa.PrivateKey
	pcrs     map[int][]byte
	moduleID string
	now      func() time.Time // for tests; time.Now otherwise

	mu       sync.Mutex
	inter    *x509.Certificate
	interKey *ecdsa.PrivateKey
	leaf     *x509.Certificate
	leafKey  *ecdsa.PrivateKey
	leafMade time.Time
}

var _ Attester = (*Simulated)(nil)

// NewSimulated returns a simulated attester whose root CA lives in
// dataDir/SimulatedRootFile: created on first use (ECDSA P-384, keys from
// crypto/rand, file mode 0600, dataDir created mode 0700 if missing) and
// reloaded afterwards, so its fingerprint stays the same across restarts.
// pcr0 is the 32-byte PCR0 of every document; vouch passes ExecutableDigest,
// the SHA-256 of its executable.
//
// It refuses a root file that others can read, or that is malformed,
// expired or not a simulated root; it never overwrites an existing file.
func NewSimulated(dataDir string, pcr0 []byte) (*Simulated, error) {
	if len(pcr0) != SimulatedPCRLen {
		return nil, fmt.Errorf("attest: simulated PCR0 must be %d bytes (SHA-256, see ExecutableDigest), got %d", SimulatedPCRLen, len(pcr0))
	}
	if dataDir == "" {
		return nil, errors.New("attest: simulated attestation needs a data directory")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("attest: simulated root: %w", err)
	}
	path := filepath.Join(dataDir, SimulatedRootFile)
	now := time.Now()
	root, key, err := loadSimulatedRoot(path, now)
	if errors.Is(err, fs.ErrNotExist) {
		root, key, err = createSimulatedRoot(path, now)
	}
	if err != nil {
		return nil, err
	}
	fp := sha256.Sum256(root.Raw)
	var enc [8]byte
	if _, err := rand.Read(enc[:]); err != nil {
		return nil, err
	}
	return &Simulated{
		root:     root,
		rootKey:  key,
		pcrs:     SimulatedPCRs(pcr0),
		moduleID: simulatedModulePrefix + hex.EncodeToString(fp[:8]) + "-enc" + hex.EncodeToString(enc[:]),
		now:      time.Now,
	}, nil
}

// Platform returns PlatformSimulated.
func (s *Simulated) Platform() string { return PlatformSimulated }

// RootFingerprint returns the SHA-256 of the simulated root certificate's
// DER: the value to put in Policy.RootFingerprint to accept this machine's
// simulated documents and no one else's.
func (s *Simulated) RootFingerprint() [32]byte { return sha256.Sum256(s.root.Raw) }

// RootCertificate returns the simulated root certificate (a fresh copy).
func (s *Simulated) RootCertificate() *x509.Certificate {
	c, err := x509.ParseCertificate(bytes.Clone(s.root.Raw))
	if err != nil {
		panic(err) // parsed once already
	}
	return c
}

// ModuleID returns the module_id of this attester's documents:
// "SIMULATED-<root fingerprint prefix>-enc<random per attester>".
func (s *Simulated) ModuleID() string { return s.moduleID }

// PCRs returns the PCRs of this attester's documents (see SimulatedPCRs).
func (s *Simulated) PCRs() map[int][]byte {
	out := make(map[int][]byte, len(s.pcrs))
	for i, v := range s.pcrs {
		out[i] = bytes.Clone(v)
	}
	return out
}

// Attest returns a SIMULATED attestation document binding req: a COSE_Sign1
// (untagged, ES384) over a payload in the Nitro layout, signed by a leaf
// certificate issued through an intermediate by the simulated root. The leaf
// is valid for three hours and re-issued after one, so a document stays
// verifiable for at least two hours.
func (s *Simulated) Attest(ctx context.Context, req Request) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := req.check(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if err := s.ensureLeaf(now); err != nil {
		return nil, err
	}
	doc := &document{
		ModuleID:    s.moduleID,
		Digest:      digestSHA256,
		Timestamp:   uint64(now.UnixMilli()),
		PCRs:        s.pcrs,
		Certificate: s.leaf.Raw,
		CABundle:    [][]byte{s.root.Raw, s.inter.Raw},
		PublicKey:   nilIfEmpty(req.PublicKey),
		UserData:    nilIfEmpty(req.UserData),
		Nonce:       nilIfEmpty(req.Nonce),
	}
	signer, err := cose.NewSigner(cose.AlgorithmES384, s.leafKey)
	if err != nil {
		return nil, fmt.Errorf("attest: simulated signer: %w", err)
	}
	headers := cose.Headers{
		Protected:   cose.ProtectedHeader{cose.HeaderLabelAlgorithm: cose.AlgorithmES384},
		Unprotected: cose.UnprotectedHeader{},
	}
	out, err := cose.Sign1Untagged(rand.Reader, signer, headers, doc.marshal(), nil)
	if err != nil {
		return nil, fmt.Errorf("attest: simulated signature: %w", err)
	}
	return out, nil
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

// ensureLeaf (re)issues the intermediate and leaf when needed. s.mu is held.
func (s *Simulated) ensureLeaf(now time.Time) error {
	if s.inter == nil || now.Add(simulatedLeafLifetime).After(s.inter.NotAfter) || now.Before(s.inter.NotBefore) {
		key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			Subject:               pkix.Name{CommonName: simulatedIntermediateName, Organization: []string{simulatedOrganization}},
			NotBefore:             now.Add(-simulatedBackdate),
			NotAfter:              now.Add(simulatedInterLifetime),
			IsCA:                  true,
			BasicConstraintsValid: true,
			MaxPathLenZero:        true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		}
		cert, err := issue(tmpl, s.root, &key.PublicKey, s.rootKey)
		if err != nil {
			return err
		}
		s.inter, s.interKey, s.leaf = cert, key, nil
	}
	if s.leaf != nil && !now.Before(s.leafMade) && now.Sub(s.leafMade) < simulatedLeafReuse {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: simulatedLeafNamePrefix + s.moduleID, Organization: []string{simulatedOrganization}},
		NotBefore:             now.Add(-simulatedBackdate),
		NotAfter:              now.Add(simulatedLeafLifetime),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
	}
	cert, err := issue(tmpl, s.inter, &key.PublicKey, s.interKey)
	if err != nil {
		return err
	}
	s.leaf, s.leafKey, s.leafMade = cert, key, now
	return nil
}

// issue signs tmpl (given a random serial number) with parentKey.
func issue(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, parentKey *ecdsa.PrivateKey) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1))
	tmpl.SignatureAlgorithm = x509.ECDSAWithSHA384
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, fmt.Errorf("attest: issuing simulated certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// createSimulatedRoot makes a new root and stores it at path without ever
// replacing an existing file: if another process created one first, that
// one is loaded instead.
func createSimulatedRoot(path string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: SimulatedRootCommonName, Organization: []string{simulatedOrganization}},
		NotBefore:             now.Add(-simulatedBackdate),
		NotAfter:              now.Add(simulatedRootLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	root, err := issue(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	var buf bytes.Buffer
	buf.WriteString("# vouch SIMULATED attestation root: for development only.\n# Anyone who can read this file can sign SIMULATED attestation documents.\n")
	_ = pem.Encode(&buf, &pem.Block{Type: pemTypeCertificate, Bytes: root.Raw})
	_ = pem.Encode(&buf, &pem.Block{Type: pemTypePrivateKey, Bytes: pkcs8})

	if err := secretfile.Create(path, buf.Bytes()); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadSimulatedRoot(path, now)
		}
		return nil, nil, fmt.Errorf("attest: storing simulated root: %w", err)
	}
	return root, key, nil
}

// loadSimulatedRoot reads and checks a root file written by
// createSimulatedRoot. A missing file yields an error wrapping
// fs.ErrNotExist.
func loadSimulatedRoot(path string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("attest: simulated root %s: %s", path, fmt.Sprintf(format, args...))
	}
	data, err := secretfile.Read(path, simulatedRootFileMaxLength)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
		return nil, nil, bad("%v", err)
	}
	var certDER, keyDER []byte
	for rest := data; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		switch {
		case blk.Type == pemTypeCertificate && certDER == nil:
			certDER = blk.Bytes
		case blk.Type == pemTypePrivateKey && keyDER == nil:
			keyDER = blk.Bytes
		default:
			return nil, nil, bad("unexpected PEM block %q", blk.Type)
		}
	}
	if certDER == nil || keyDER == nil {
		return nil, nil, bad("want one CERTIFICATE and one PRIVATE KEY PEM block")
	}
	root, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, nil, bad("%v", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, nil, bad("%v", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P384() {
		return nil, nil, bad("key is not ECDSA P-384")
	}
	if !key.PublicKey.Equal(root.PublicKey) {
		return nil, nil, bad("key does not match certificate")
	}
	if !isSimulatedRoot(root) || !strings.Contains(root.Subject.CommonName, SimulatedRootCommonName) {
		return nil, nil, bad("not a self-signed vouch simulated root CA")
	}
	if now.Before(root.NotBefore) || now.Add(simulatedInterLifetime).After(root.NotAfter) {
		return nil, nil, bad("expired or not yet valid (%s to %s); delete it to create a new root (clients pinning the old fingerprint must then be updated)",
			root.NotBefore.UTC().Format(time.RFC3339), root.NotAfter.UTC().Format(time.RFC3339))
	}
	return root, key, nil
}
