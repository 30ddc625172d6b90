package client_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/internal/vsock"
)

// TestTLSPinsAttestedKey runs against a runtime serving HTTPS with a key
// made at start: the client needs no CA, pins the key the attestation
// binds, and pins the new key after a restart (a new attestation binds it).
func TestTLSPinsAttestedKey(t *testing.T) {
	env := enclavetest.Start(t, enclavetest.WithTLS())
	if !strings.HasPrefix(env.URL, "https://") {
		t.Fatalf("URL %s", env.URL)
	}
	ref := env.DeployLeader()
	c := env.Client(client.Options{})
	res, err := c.Run(context.Background(), ref, []byte(leaderInput))
	if err != nil || len(res.Output) == 0 {
		t.Fatalf("Run over https: %v", err)
	}
	bound := c.Cached().TLSKeySHA256
	if len(bound) != 32 || !bytes.Equal(bound, env.Server.TLSKeySHA256()) {
		t.Fatalf("the client pinned %x; the runtime serves %x", bound, env.Server.TLSKeySHA256())
	}

	// A restart makes a new TLS key: the client attests again and pins it.
	env = env.Restart()
	if bytes.Equal(env.Server.TLSKeySHA256(), bound) {
		t.Fatal("the restarted runtime kept its TLS key")
	}
	if _, err := c.Run(context.Background(), ref, []byte(leaderInput)); err != nil {
		t.Fatalf("Run after a restart with a new TLS key: %v", err)
	}
	if got := c.Cached().TLSKeySHA256; !bytes.Equal(got, env.Server.TLSKeySHA256()) {
		t.Fatalf("after the restart the client pins %x; the runtime serves %x", got, env.Server.TLSKeySHA256())
	}
}

// credentialCounter is a handler wrapper that counts requests carrying an
// Authorization header.
type credentialCounter struct {
	next  http.Handler
	creds atomic.Int64
	all   atomic.Int64
}

func (c *credentialCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.all.Add(1)
	if r.Header.Get("Authorization") != "" {
		c.creds.Add(1)
	}
	c.next.ServeHTTP(w, r)
}

// TestTLSProxyWithOwnKeyRefused puts a TLS-terminating proxy with its own
// certificate in front of a real runtime: it passes the runtime's genuine
// attestation through, but that binds the runtime's key, not the proxy's.
// The client refuses it, naming both hashes, and neither the owner
// credential nor a function token nor an input reaches the proxy.
func TestTLSProxyWithOwnKeyRefused(t *testing.T) {
	env := enclavetest.Start(t, enclavetest.WithTLS())
	ref := env.DeployLeader()
	target, _ := url.Parse(env.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	counter := &credentialCounter{next: rp}
	proxy := httptest.NewTLSServer(counter)
	t.Cleanup(proxy.Close)
	proxyKey := api.TLSKeyHash(proxy.Certificate())

	c, err := client.New(proxy.URL, client.Options{OwnerToken: env.Owner, Trust: env.Trust()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	_, err = c.Attest(ctx)
	if !errors.Is(err, client.ErrTLSKey) || !strings.Contains(err.Error(), hex.EncodeToString(proxyKey)) ||
		!strings.Contains(err.Error(), hex.EncodeToString(env.Server.TLSKeySHA256())) {
		t.Fatalf("Attest through a proxy with its own key: %v; want ErrTLSKey naming %x and %x", err, proxyKey, env.Server.TLSKeySHA256())
	}
	if _, err := c.List(ctx); !errors.Is(err, client.ErrTLSKey) {
		t.Fatalf("List through the proxy: %v", err)
	}
	if _, err := c.Run(ctx, ref, []byte(leaderInput)); !errors.Is(err, client.ErrTLSKey) {
		t.Fatalf("Run through the proxy: %v", err)
	}
	if n := counter.creds.Load(); n != 0 {
		t.Fatalf("%d requests with a credential reached the proxy", n)
	}
	if counter.all.Load() == 0 {
		t.Fatal("the proxy saw no request at all: the test proves nothing")
	}
}

// TestTLSBindingOfAnotherKey serves the runtime's API with one key while
// its identity binds another (a server that is not the attested runtime):
// the client refuses it.
func TestTLSBindingOfAnotherKey(t *testing.T) {
	env := enclavetest.Start(t, enclavetest.WithTLS())
	other, err := tlsServerCert(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The same handler, so the identity binds env's key, behind other's.
	srv := httptest.NewUnstartedServer(env.Server.Handler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*other}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, client.Options{OwnerToken: env.Owner, Trust: env.Trust()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.List(context.Background()); !errors.Is(err, client.ErrTLSKey) {
		t.Fatalf("List on a server whose identity binds another key: %v", err)
	}
}

// TestCleartextCredentialRefused: over plain http to a host that is not
// loopback, the owner credential and function tokens are refused before
// anything is dialed.
func TestCleartextCredentialRefused(t *testing.T) {
	var dials atomic.Int64
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("the test dials nothing")
	}}}
	c, err := client.New("http://192.0.2.1:7070", client.Options{OwnerToken: "owner", HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.List(ctx)
	if !errors.Is(err, client.ErrInsecureURL) || !strings.Contains(err.Error(), "https://") {
		t.Fatalf("List over http to 192.0.2.1: %v", err)
	}
	if _, err := c.MintToken(ctx, "f", strings.Repeat("ab", 32), time.Hour); !errors.Is(err, client.ErrInsecureURL) {
		t.Fatalf("MintToken: %v", err)
	}
	if err := c.Delete(ctx, "f"); !errors.Is(err, client.ErrInsecureURL) {
		t.Fatalf("Delete: %v", err)
	}
	_, err = c.Run(ctx, client.FunctionRef{ID: "f", Checksum: strings.Repeat("ab", 32), Token: "tok"}, []byte("x"))
	if !errors.Is(err, client.ErrInsecureURL) || !strings.Contains(err.Error(), "function token") {
		t.Fatalf("Run with a token: %v", err)
	}
	if n := dials.Load(); n != 0 {
		t.Fatalf("%d dials", n)
	}
	for _, h := range []string{"127.0.0.1", "localhost", "[::1]", "127.3.4.5"} {
		if !client.Loopback(strings.Trim(h, "[]")) {
			t.Errorf("%s is not loopback", h)
		}
	}
	for _, h := range []string{"192.0.2.1", "example.com", "0.0.0.0", "localhost.example.com"} {
		if client.Loopback(h) {
			t.Errorf("%s is loopback", h)
		}
	}
}

// TestTLSOperatorCertificate serves the runtime with an operator's
// certificate from a CA: the attestation binds that certificate's key, so
// a pinning client accepts it, and a client given the CA (TLSRootCAs)
// accepts it by name.
func TestTLSOperatorCertificate(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	cert, err := tlsServerCert(t, ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	env := enclavetest.Start(t, enclavetest.WithTLSCertificate(cert))
	if !bytes.Equal(env.Server.TLSKeySHA256(), api.TLSKeyHash(cert.Leaf)) {
		t.Fatal("the attestation does not bind the operator certificate's key")
	}
	ref := env.DeployLeader() // pinned through the attestation
	pool, err := client.ParseCAs(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	if err != nil {
		t.Fatal(err)
	}
	c := env.Client(client.Options{TLSRootCAs: pool})
	if _, err := c.Run(context.Background(), ref, []byte(leaderInput)); err != nil {
		t.Fatalf("Run with the operator's CA: %v", err)
	}
	// Another CA: the certificate does not chain to it.
	other, _ := tlsServerCert(t, nil, nil)
	wrong := x509.NewCertPool()
	wrong.AddCert(other.Leaf)
	c = env.Client(client.Options{TLSRootCAs: wrong})
	if _, err := c.List(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("List with a CA that did not sign the certificate: %v", err)
	}
}

// tlsServerCert makes a certificate for 127.0.0.1 signed by ca (self-signed
// when ca is nil).
func tlsServerCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true}
	parent, signer := tmpl, any(key)
	if ca != nil {
		parent, signer = ca, caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// TestTLSThroughByteForwarder reaches a runtime through `vouch enclave
// proxy`'s forwarder (over a TCP stand-in for vsock): it forwards bytes, so
// TLS terminates in the runtime and the client pins the runtime's key.
func TestTLSThroughByteForwarder(t *testing.T) {
	env := enclavetest.Start(t, enclavetest.WithTLS())
	ref := env.DeployLeader()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		vsock.Forward(ctx, ln, func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", env.Addr())
		}, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() { cancel(); ln.Close(); <-done })
	c, err := client.New("https://"+ln.Addr().String(), client.Options{Trust: env.Trust()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Run(ctx, ref, []byte(leaderInput)); err != nil {
		t.Fatalf("Run through the forwarder: %v", err)
	}
	if !bytes.Equal(c.Cached().TLSKeySHA256, env.Server.TLSKeySHA256()) {
		t.Fatal("the client did not pin the runtime's key")
	}
}
