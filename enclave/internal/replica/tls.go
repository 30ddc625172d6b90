package replica

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/vouch-dev/vouch/api"
)

// authorityCert is the TLS authority as an x509 parent: only its key
// matters, it is never sent.
func authorityCert(pub ed25519.PublicKey) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: "vouch replica authority"},
		PublicKey:             pub,
		PublicKeyAlgorithm:    x509.Ed25519,
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		Version:               3,
	}
}

// replicaCert makes an ephemeral Ed25519 key and a certificate for it (CN
// and DNS name = id) signed by the authority.
func replicaCert(id string, authority ed25519.PrivateKey) (tls.Certificate, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: id},
		DNSNames:     []string{id},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	parent := authorityCert(authority.Public().(ed25519.PublicKey))
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, authority)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("replica: make TLS certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}, nil
}

// verifyPeer accepts a peer whose leaf certificate the authority signed,
// is currently valid and names a valid replica ID, which must be wantID
// unless that is empty. TLS 1.3 has already checked that the peer holds
// the leaf's key.
func verifyPeer(authority *x509.Certificate, wantID string) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("replica: peer sent no certificate")
		}
		leaf, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return fmt.Errorf("replica: peer certificate: %w", err)
		}
		if err := leaf.CheckSignatureFrom(authority); err != nil {
			return fmt.Errorf("replica: peer certificate is not signed by the service's TLS authority: %w", err)
		}
		if now := time.Now(); now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
			return errors.New("replica: peer certificate expired or not yet valid")
		}
		if !api.ValidReplicaID(leaf.Subject.CommonName) {
			return fmt.Errorf("replica: peer certificate names invalid replica ID %q", leaf.Subject.CommonName)
		}
		if wantID != "" && leaf.Subject.CommonName != wantID {
			return fmt.Errorf("replica: peer certificate is for replica %q, want %q", leaf.Subject.CommonName, wantID)
		}
		return nil
	}
}

// tlsConfigs returns the server and client TLS configurations of replica id.
func tlsConfigs(id string, authority ed25519.PrivateKey) (server, client *tls.Config, err error) {
	cert, err := replicaCert(id, authority)
	if err != nil {
		return nil, nil, err
	}
	verify := verifyPeer(authorityCert(authority.Public().(ed25519.PublicKey)), "")
	server = &tls.Config{
		MinVersion:            tls.VersionTLS13,
		Certificates:          []tls.Certificate{cert},
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: verify,
	}
	client = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// The standard chain check is replaced by verify, which checks
		// the authority's signature (and Dial the replica ID).
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: verify,
	}
	return server, client, nil
}

// tlsStream is raft's stream layer: TCP with mutual TLS 1.3.
type tlsStream struct {
	net.Listener
	advertise net.Addr
	server    *tls.Config
	client    *tls.Config
	authority *x509.Certificate
	// idOf names the replica at a raft address in the latest
	// configuration, "" if none: Dial then requires that ID.
	idOf func(addr string) string
}

var _ raft.StreamLayer = (*tlsStream)(nil)

// handshakeTimeout bounds a peer's TLS handshake.
const handshakeTimeout = 10 * time.Second

func (s *tlsStream) Accept() (net.Conn, error) {
	c, err := s.Listener.Accept()
	if err != nil {
		return nil, err
	}
	// The handshake runs on the first read, in raft's per-connection
	// goroutine; a deadline stops a silent peer holding it.
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	return &serverConn{Conn: tls.Server(c, s.server)}, nil
}

// serverConn clears the handshake deadline once the handshake is done.
type serverConn struct {
	*tls.Conn
	done bool
}

func (c *serverConn) Read(p []byte) (int, error) {
	if !c.done {
		if err := c.Conn.Handshake(); err != nil {
			c.Conn.Close()
			return 0, err
		}
		c.done = true
		c.Conn.SetDeadline(time.Time{})
	}
	return c.Conn.Read(p)
}

func (s *tlsStream) Addr() net.Addr { return s.advertise }

func (s *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	cfg := s.client
	if id := s.idOf(string(addr)); id != "" {
		cfg = cfg.Clone()
		cfg.ServerName = id
		cfg.VerifyPeerCertificate = verifyPeer(s.authority, id)
	}
	d := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(d, "tcp", string(addr), cfg)
}

// advertiseAddr is a net.Addr for the advertised HOST:PORT.
type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }
