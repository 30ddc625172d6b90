package attest

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"fmt"
)

// NitroRootFingerprint is the SHA-256, in hex, of the DER of the AWS Nitro
// Enclaves root certificate (AWS_NitroEnclaves_Root-G1, CN=aws.nitro-enclaves,
// valid 2019-10-28 to 2049-10-28) that [Verify] pins for Nitro documents.
const NitroRootFingerprint = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"

// nitroRootPEM is the AWS Nitro Enclaves root certificate, PEM encoded, as
// published by AWS in AWS_NitroEnclaves_Root-G1.zip (SHA-256 of the zip:
// 8cf60e2b2efca96c6a9e71e851d00c1b6991cc09eadbe64a6a1d1b1eb9faff7c).
//
//go:embed aws_nitro_enclaves_root_g1.pem
var nitroRootPEM []byte

// NitroRootPEM returns the pinned AWS Nitro Enclaves root certificate, PEM
// encoded, exactly as AWS publishes it in AWS_NitroEnclaves_Root-G1.zip
// (root.pem; SHA-256 of the zip:
// 8cf60e2b2efca96c6a9e71e851d00c1b6991cc09eadbe64a6a1d1b1eb9faff7c).
func NitroRootPEM() []byte { return bytes.Clone(nitroRootPEM) }

// nitroRoot is the parsed embedded root; its DER is checked against
// NitroRootFingerprint when the package is initialised.
var nitroRoot = mustParseNitroRoot()

func mustParseNitroRoot() *x509.Certificate {
	c, err := parseNitroRoot(nitroRootPEM)
	if err != nil {
		panic(err) // the embedded asset is broken: a build error, not an input error
	}
	return c
}

func parseNitroRoot(pemBytes []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(pemBytes)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("attest: embedded AWS Nitro root is not a PEM certificate")
	}
	sum := sha256.Sum256(blk.Bytes)
	if hex.EncodeToString(sum[:]) != NitroRootFingerprint {
		return nil, fmt.Errorf("attest: embedded AWS Nitro root has fingerprint %x, want %s", sum, NitroRootFingerprint)
	}
	return x509.ParseCertificate(bytes.Clone(blk.Bytes))
}

// NitroRootCertificate returns the pinned AWS Nitro Enclaves root
// certificate (a fresh copy each call).
func NitroRootCertificate() *x509.Certificate {
	c, err := x509.ParseCertificate(bytes.Clone(nitroRoot.Raw))
	if err != nil {
		panic(err) // parsed once already at init
	}
	return c
}
