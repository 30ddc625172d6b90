package client

// How a Client protects what it sends (docs/API.md, "Transport"):
//
//  1. https:// runtime URLs need no CA. The runtime serves a key it made
//     inside itself and binds its hash (api.TLSKeyHash) in its attestation.
//     Each replica has two HTTP clients: one for attestation, which opens a
//     fresh connection, accepts any certificate and reports the leaf it
//     presented; and one for everything else, whose handshake refuses any
//     leaf but the pinned one. Attesting a replica checks that the
//     attestation binds the leaf of the connection it came over, then pins
//     that key. No credential and no input is sent before that: the second
//     client cannot even connect to an unpinned replica.
//  2. A later connection that presents another key fails its handshake
//     (ErrTLSKey). The client attests once more, in case the runtime
//     restarted with a new key; if the attestation binds the new key it is
//     pinned and the request sent, else the error names both hashes.
//  3. With Options.TLSRootCAs, https connections are verified against those
//     CAs and the host name instead (an operator's certificate, e.g. a load
//     balancer terminating TLS): the transport then trusts the CA, not the
//     attestation; inputs are still sealed to the attested key.
//  4. Over plain http:// the client refuses to send the owner credential or
//     a function token to a host other than loopback (ErrInsecureURL),
//     before dialing.

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/vouch-dev/vouch/api"
)

// ErrTLSKey is wrapped when a runtime presents a TLS key other than the one
// its attestation binds.
var ErrTLSKey = errors.New("runtime's TLS key is not the one its attestation binds")

// ErrInsecureURL is wrapped when the client refuses to send a credential
// over plain HTTP to a host that is not loopback. Nothing was sent.
var ErrInsecureURL = errors.New("refusing to send a credential in the clear")

// tlsKeyError is a TLS handshake that presented a key other than the pinned
// one (or reached a replica not attested yet).
type tlsKeyError struct {
	url       string
	got, want []byte // want is nil when nothing is pinned yet
}

func (e *tlsKeyError) Error() string {
	if e.want == nil {
		return fmt.Sprintf("runtime at %s presented TLS key sha256 %x before its attestation was verified", e.url, e.got)
	}
	return fmt.Sprintf("%v: runtime at %s presented TLS key sha256 %x, but its attestation binds %x", ErrTLSKey, e.url, e.got, e.want)
}

func (e *tlsKeyError) Unwrap() error { return ErrTLSKey }

// transport is how the client reaches one replica: plain HTTP, pinned TLS,
// or TLS verified against operator CAs.
type transport struct {
	hc       *http.Client // everything but attestation
	attestHC *http.Client // attestation: fresh connections, any certificate
	pinned   bool         // https without TLSRootCAs: the key is pinned
	pin      atomic.Pointer[[]byte]
}

// newTransport returns the transport for the replica at u.
func (c *Client) newTransport(u *url.URL) (*transport, error) {
	if u.Scheme != "https" {
		return &transport{hc: c.hc, attestHC: c.hc}, nil
	}
	base, ok := c.hc.Transport.(*http.Transport)
	if c.hc.Transport == nil {
		base, ok = http.DefaultTransport.(*http.Transport)
	}
	if !ok {
		return nil, fmt.Errorf("runtime URL %s is https, but Options.HTTPClient's Transport is a %T: the client needs an *http.Transport to pin the runtime's attested TLS key", u, c.hc.Transport)
	}
	t := &transport{}
	mk := func(cfg *tls.Config, keepAlive bool) *http.Client {
		tr := base.Clone()
		tr.TLSClientConfig = cfg
		tr.DisableKeepAlives = !keepAlive
		tr.ForceAttemptHTTP2 = false
		hc := *c.hc
		hc.Transport = tr
		return &hc
	}
	if c.opts.TLSRootCAs != nil {
		cfg := &tls.Config{RootCAs: c.opts.TLSRootCAs, MinVersion: tls.VersionTLS12}
		t.hc = mk(cfg, true)
		t.attestHC = t.hc
		return t, nil
	}
	t.pinned = true
	raw := u.String()
	// The certificate is self-signed and its names are not checked: what
	// counts is that its key is the attested one, checked here for every
	// connection before a byte of a request is sent.
	t.hc = mk(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, VerifyConnection: func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("runtime at %s presented no TLS certificate", raw)
		}
		got := api.TLSKeyHash(cs.PeerCertificates[0])
		want := t.pin.Load()
		if want == nil {
			return &tlsKeyError{url: raw, got: got}
		}
		if subtle.ConstantTimeCompare(got, *want) != 1 {
			return &tlsKeyError{url: raw, got: got, want: *want}
		}
		return nil
	}}, true)
	t.attestHC = mk(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, VerifyConnection: func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("runtime at %s presented no TLS certificate", raw)
		}
		return nil
	}}, false)
	return t, nil
}

// pinnedKey returns the replica's pinned TLS key, nil if none.
func (t *transport) pinnedKey() []byte {
	if p := t.pin.Load(); p != nil {
		return *p
	}
	return nil
}

// checkTLSBinding checks that the attested binding bound matches the key
// presented on the connection the identity came over (presented, nil
// without TLS).
func checkTLSBinding(rep *replica, bound, presented []byte) error {
	if !rep.tr.pinned {
		return nil
	}
	if presented == nil {
		return fmt.Errorf("runtime at %s answered without TLS although its URL is https", rep.url)
	}
	if bound == nil {
		return fmt.Errorf("%w: runtime at %s presented TLS key sha256 %x, but its attestation binds no TLS key (it serves plain HTTP behind whatever answered, or it is older than this client)", ErrTLSKey, rep.url, presented)
	}
	if subtle.ConstantTimeCompare(bound, presented) != 1 {
		return fmt.Errorf("%w: runtime at %s presented TLS key sha256 %s, but its attestation binds %s (a TLS proxy in front of it, or another server)",
			ErrTLSKey, rep.url, hex.EncodeToString(presented), hex.EncodeToString(bound))
	}
	return nil
}

// checkCleartext refuses to send a credential over plain HTTP to a host
// other than loopback.
func checkCleartext(rep *replica, what string) error {
	if rep.base.Scheme != "http" || Loopback(rep.base.Hostname()) {
		return nil
	}
	return fmt.Errorf("%w: %s is plain http:// to a host that is not loopback, so the %s would cross the network unencrypted; "+
		"use the runtime's https:// URL (vouch enclave serves HTTPS by default, with a key its attestation binds)", ErrInsecureURL, rep.url, what)
}

// CheckCredentialTransport returns an error wrapping ErrInsecureURL if a
// credential (what names it: "owner credential", "function token") would go
// in the clear to one of the client's runtime URLs: plain http:// to a host
// that is not loopback. Calls that send a credential check this themselves;
// a caller may check first, before any request at all.
func (c *Client) CheckCredentialTransport(what string) error {
	c.mu.Lock()
	reps := append([]*replica(nil), c.replicas...)
	c.mu.Unlock()
	for _, r := range reps {
		if err := checkCleartext(r, what); err != nil {
			return err
		}
	}
	return nil
}

// Loopback reports whether host (a URL's host name, without port) is a
// loopback address or "localhost", where plain HTTP never leaves the
// machine. Other names are not resolved.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseCAs reads PEM CA certificates for Options.TLSRootCAs (--tls-ca).
func ParseCAs(pemData []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}
