package enclave

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/vouch-dev/vouch/api"
)

// GenerateTLSCertificate returns a new ECDSA P-256 key, drawn from
// crypto/rand, in a self-signed certificate: what a runtime serves its API
// with by default. Clients trust it through the attestation, which binds
// its key (api.TLSKeyHash), not through a CA, so its names and validity
// period are not checked; it is valid for ten years so that a runtime is
// never left with an expired one.
func GenerateTLSCertificate() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "vouch runtime (key bound by its attestation)"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// tlsKeyHash returns what the identity binds of cert: api.TLSKeyHash of its
// leaf.
func tlsKeyHash(cert *tls.Certificate) ([]byte, error) {
	if cert == nil {
		return nil, nil
	}
	if len(cert.Certificate) == 0 {
		return nil, errors.New("enclave: Config.TLSCertificate holds no certificate")
	}
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("enclave: Config.TLSCertificate: %w", err)
		}
	}
	return api.TLSKeyHash(leaf), nil
}

// tlsConfig is the server side of the API's TLS.
func tlsConfig(cert *tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
}
