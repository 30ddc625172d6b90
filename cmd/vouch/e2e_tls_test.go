package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2ETLS runs `vouch enclave` processes: HTTPS by default with the key
// it binds in its attestation, an operator certificate (--tls-cert,
// --tls-key, and --tls-ca on the client), --insecure-http's warning, and
// the CLI's refusal to send a credential over plain http to a host that is
// not loopback.
func TestE2ETLS(t *testing.T) {
	t.Parallel()
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		work := t.TempDir()
		data := filepath.Join(work, "data")
		enc := startEnclave(t, work, data, 0, nil)
		if !strings.HasPrefix(enc.url, "https://") || !strings.Contains(enc.stderr(), "listen=https://127.0.0.1:") ||
			!strings.Contains(enc.stderr(), "tls_key_sha256=") {
			t.Fatalf("the runtime does not say it serves HTTPS with an attested key:\n%s", enc.stderr())
		}
		owner := newCLI(t, work, "VOUCH_ENCLAVE="+enc.url, "VOUCH_DATA="+data)
		owner.ok("deploy", "--builtin", "leader")
		// The same runtime over plain http: the handshake fails, nothing is
		// served in the clear.
		owner.fail(1, []string{"serves HTTPS, not plain HTTP", "use its https:// URL"}, "list", "--enclave", "http"+strings.TrimPrefix(enc.url, "https"))

		// Owner commands refuse the credential over http to a host that is
		// not loopback, before dialing.
		for _, args := range [][]string{
			{"deploy", "--builtin", "leader"},
			{"list"},
			{"token", "f", "--function-checksum", strings.Repeat("ab", 32)},
		} {
			owner.fail(1, []string{"refusing to send a credential in the clear", "https://"}, append(args, "--enclave", "http://192.0.2.1:7070")...)
		}
		newCLI(t, work).fail(1, []string{"refusing to send a credential in the clear", "function token"},
			"run", "f", "{}", "--enclave", "http://192.0.2.1:7070", "--token", "tok", "--function-checksum", strings.Repeat("ab", 32), "--allow-simulated")
	})

	t.Run("insecure-http", func(t *testing.T) {
		t.Parallel()
		work := t.TempDir()
		data := filepath.Join(work, "data")
		port := freePort(t)
		// Listening on every address: not loopback, so it warns.
		enc := startEnclave(t, work, data, port, nil, "--insecure-http", "--listen", fmt.Sprintf("0.0.0.0:%d", port))
		if !strings.HasPrefix(enc.url, "http://") || !strings.Contains(enc.stderr(), "serving plain HTTP (--insecure-http) on an address that is not loopback") {
			t.Fatalf("no warning for --insecure-http off loopback:\n%s", enc.stderr())
		}
		// Over loopback the CLI still works.
		newCLI(t, work, "VOUCH_ENCLAVE="+enc.url, "VOUCH_DATA="+data).ok("deploy", "--builtin", "leader")

		work2 := t.TempDir()
		enc2 := startEnclave(t, work2, filepath.Join(work2, "data"), 0, nil, "--insecure-http")
		if strings.Contains(enc2.stderr(), "not loopback") {
			t.Fatalf("warned on loopback:\n%s", enc2.stderr())
		}
	})

	t.Run("operator certificate", func(t *testing.T) {
		t.Parallel()
		work := t.TempDir()
		data := filepath.Join(work, "data")
		certFile, keyFile, spki := writeTestCert(t, work)
		enc := startEnclave(t, work, data, 0, nil, "--tls-cert", certFile, "--tls-key", keyFile)
		if want := "tls_key_sha256=" + hex.EncodeToString(spki[:]); !strings.Contains(enc.stderr(), want) {
			t.Fatalf("the runtime does not bind the operator certificate's key (%s):\n%s", want, enc.stderr())
		}
		owner := newCLI(t, work, "VOUCH_ENCLAVE="+enc.url, "VOUCH_DATA="+data)
		owner.ok("deploy", "--builtin", "leader") // pinned through the attestation
		owner.ok("list", "--tls-ca", certFile)    // verified against the CA instead
		owner.fail(1, []string{"certificate"}, "list", "--tls-ca", writeOtherCA(t))
	})

	t.Run("usage", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
			{[]string{"--tls-key", "k.pem"}, "--tls-cert and --tls-key go together"},
			{[]string{"--tls-cert", "c.pem", "--tls-key", "k.pem", "--insecure-http"}, "leave out --tls-cert"},
		} {
			r := vouch(t, append([]string{"enclave", "--data", dir, "--listen", "127.0.0.1:0"}, tc.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("want usage error with %q:\n%s", tc.want, r)
			}
		}
		r := vouch(t, "enclave", "--data", dir, "--listen", "127.0.0.1:0", "--tls-cert", filepath.Join(dir, "none.pem"), "--tls-key", filepath.Join(dir, "none.pem"))
		if r.code != 1 || !strings.Contains(r.stderr, "--tls-cert") {
			t.Errorf("a missing certificate file:\n%s", r)
		}
	})
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its key
// as PEM files under dir, and returns their paths and the SHA-256 of the
// certificate's SubjectPublicKeyInfo.
func writeTestCert(t *testing.T, dir string) (certFile, keyFile string, spki [32]byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	return certFile, keyFile, sha256.Sum256(cert.RawSubjectPublicKeyInfo)
}

// writeOtherCA writes a CA certificate that signed nothing the runtime
// serves.
func writeOtherCA(t *testing.T) string {
	t.Helper()
	c, _, _ := writeTestCert(t, t.TempDir())
	return c
}
