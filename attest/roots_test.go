package attest

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNitroRootFingerprint(t *testing.T) {
	blk, _ := pem.Decode(NitroRootPEM())
	if blk == nil {
		t.Fatal("embedded root is not PEM")
	}
	sum := sha256.Sum256(blk.Bytes)
	if got := hex.EncodeToString(sum[:]); got != NitroRootFingerprint {
		t.Fatalf("embedded root DER SHA-256 %s, want %s", got, NitroRootFingerprint)
	}
	c := NitroRootCertificate()
	if c.Subject.CommonName != "aws.nitro-enclaves" || !c.IsCA || c.NotAfter.Year() != 2049 {
		t.Errorf("root %v, IsCA %v, NotAfter %v", c.Subject, c.IsCA, c.NotAfter)
	}
	c.Raw[0] ^= 0xff // callers get a copy
	if NitroRootCertificate().Raw[0] == c.Raw[0] {
		t.Error("NitroRootCertificate exposes the pinned root")
	}
	if _, err := parseNitroRoot(bytes.Replace(NitroRootPEM(), []byte("MIIC"), []byte("MIID"), 1)); err == nil {
		t.Error("parseNitroRoot accepted a modified root")
	}
}

// The embedded PEM is the one in AWS's published zip, whose SHA-256 is the
// one AWS publishes.
func TestNitroRootMatchesAWSZip(t *testing.T) {
	zipPath := filepath.Join(testdataDir, "AWS_NitroEnclaves_Root-G1.zip")
	data, err := os.ReadFile(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(zipPath + ".sha256.hex")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != strings.TrimSpace(string(want)) {
		t.Fatalf("zip SHA-256 %x, want %s", sum, want)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name != "root.pem" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		pemBytes, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		a, _ := pem.Decode(pemBytes)
		b, _ := pem.Decode(NitroRootPEM())
		if a == nil || b == nil || !bytes.Equal(a.Bytes, b.Bytes) {
			t.Fatal("embedded root differs from root.pem in the AWS zip")
		}
		return
	}
	t.Fatal("no root.pem in the AWS zip")
}
