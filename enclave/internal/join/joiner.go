package join

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/enclave/internal/servicekeys"
)

// Joiner is a replica that joins a running service.
type Joiner struct {
	// Attester makes the joiner's attestation document.
	Attester attest.Attester
	// ReplicaID, RaftAddr (HOST:PORT) and APIURL (http or https) are what
	// the joiner attests and the service records.
	ReplicaID, RaftAddr, APIURL string
	// Policy is how the joiner verifies the member's identity document
	// (its Nonce is always set to the challenge). Nil: the joiner's own
	// platform, root (pinned for SIMULATED) and measurements (Nitro: PCR0,
	// 1 and 2; SIMULATED: PCR0).
	Policy *attest.Policy
	// HTTPClient sends the requests; nil means DefaultHTTPClient. Over
	// https it must not verify the member's certificate against a CA
	// (the member's is self-signed): the joiner checks instead that the
	// member's attestation binds the key of the connection that answered
	// the join (the keys it seals are safe on any transport).
	HTTPClient *http.Client
}

// DefaultHTTPClient is the client a Joiner uses by default: it accepts any
// TLS certificate, because the joiner pins the member's TLS key to the one
// the member's attestation binds (checkResponse).
var DefaultHTTPClient = &http.Client{Transport: &http.Transport{
	Proxy:           http.ProxyFromEnvironment,
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
}}

// Join asks the member at memberURL (its API base URL) for the service
// keys: it fetches a challenge, attests, sends the join request and checks
// that the member's identity document, over the same nonce, binds the
// keys it received. It follows up to MaxRedirects not_leader redirects.
// An error answer of the member is returned as (wrapping) an *api.Error;
// no_leader is one the caller may retry.
func (j *Joiner) Join(ctx context.Context, memberURL string) (*servicekeys.Keys, error) {
	a := Admission{ReplicaID: j.ReplicaID, RaftAddr: j.RaftAddr, APIURL: j.APIURL}
	if err := a.check(); err != nil {
		return nil, fmt.Errorf("join: this replica's own settings: %w", err)
	}
	if j.Attester == nil {
		return nil, errors.New("join: the joiner has no attester")
	}
	url := memberURL
	for redirects := 0; ; redirects++ {
		if err := checkAPIURL(url); err != nil {
			return nil, fmt.Errorf("join: member %v", err)
		}
		keys, next, err := j.attempt(ctx, strings.TrimRight(url, "/"), a)
		if next == "" {
			return keys, err
		}
		if redirects == MaxRedirects {
			return nil, fmt.Errorf("join: gave up after %d not_leader redirects (last to %s); the replicas may be electing a leader, retry shortly", MaxRedirects, next)
		}
		url = next
	}
}

// attempt runs one challenge and join against base. A non-empty next is
// the leader's URL to start over at.
func (j *Joiner) attempt(ctx context.Context, base string, a Admission) (keys *servicekeys.Keys, next string, err error) {
	var ch Challenge
	if next, _, err := j.post(ctx, base+ChallengePath, []byte("{}"), &ch); next != "" || err != nil {
		return nil, next, err
	}
	if len(ch.Nonce) != NonceSize {
		return nil, "", fmt.Errorf("join: %s gave a %d-byte challenge, want %d", base, len(ch.Nonce), NonceSize)
	}
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	doc, err := j.Attester.Attest(ctx, attest.Request{Nonce: ch.Nonce, PublicKey: priv.PublicKey().Bytes(), UserData: userData(a)})
	if err != nil {
		return nil, "", fmt.Errorf("join: cannot attest this replica: %w", err)
	}
	body, err := json.Marshal(Request{Attestation: doc})
	if err != nil {
		return nil, "", err
	}
	var resp Response
	next, leaf, err := j.post(ctx, base+JoinPath, body, &resp)
	if next != "" || err != nil {
		return nil, next, err
	}
	if strings.HasPrefix(base, "https://") && leaf == nil {
		return nil, "", fmt.Errorf("join: %s answered without TLS although its URL is https", base)
	}
	p, err := j.memberPolicy(doc)
	if err != nil {
		return nil, "", err
	}
	keys, err = checkResponse(&resp, priv, a.ReplicaID, ch.Nonce, p, leaf)
	if err != nil {
		return nil, "", fmt.Errorf("%w (member %s)", err, base)
	}
	return keys, "", nil
}

// checkResponse opens the sealed keys and checks that the member's
// identity document verifies under p, over nonce, and binds those keys and,
// when the answer came over TLS, the key of the certificate presented
// (tlsKey, api.TLSKeyHash; nil over plain HTTP).
func checkResponse(resp *Response, priv *ecdh.PrivateKey, replicaID string, nonce []byte, p attest.Policy, tlsKey []byte) (*servicekeys.Keys, error) {
	keys, err := openKeys(priv, replicaID, nonce, resp.SealedKeys)
	if err != nil {
		return nil, err
	}
	p.Nonce = nonce
	c, err := attest.Verify(resp.Attestation, p)
	if err != nil {
		return nil, fmt.Errorf("%w: the member's attestation: %w", ErrMember, err)
	}
	b, err := api.ParseIdentityBinding(c.UserData)
	if err != nil {
		return nil, fmt.Errorf("%w: the member's attestation: %v", ErrMember, err)
	}
	rk, hk, rid := b.ReceiptKey, b.HPKEKey, b.ReplicaID
	if tlsKey != nil && subtle.ConstantTimeCompare(tlsKey, b.TLSKeySHA256) != 1 {
		bound := "no TLS key"
		if b.TLSKeySHA256 != nil {
			bound = "TLS key sha256 " + hex.EncodeToString(b.TLSKeySHA256)
		}
		return nil, fmt.Errorf("%w: the member presented TLS key sha256 %x, but its attestation binds %s", ErrMember, tlsKey, bound)
	}
	if rid == "" {
		return nil, fmt.Errorf("%w: the member's attestation is a single runtime's identity, not a replica's", ErrMember)
	}
	myRK := keys.Receipt.Public().(ed25519.PublicKey)
	if !bytes.Equal(rk, myRK) || !bytes.Equal(c.PublicKey, myRK) {
		return nil, fmt.Errorf("%w: replica %q attests receipt key %x, but the keys it sealed have %x", ErrMember, rid, rk, []byte(myRK))
	}
	if !bytes.Equal(hk, keys.HPKE.PublicKey()) {
		return nil, fmt.Errorf("%w: replica %q attests HPKE key %x, but the keys it sealed have %x", ErrMember, rid, hk, keys.HPKE.PublicKey())
	}
	return keys, nil
}

// memberPolicy returns j.Policy, or the default built from the joiner's
// own document doc: its platform, root and measurements.
func (j *Joiner) memberPolicy(doc []byte) (attest.Policy, error) {
	if j.Policy != nil {
		return *j.Policy, nil
	}
	sim := j.Attester.Platform() == attest.PlatformSimulated
	c, err := attest.Verify(doc, attest.Policy{AllowSimulated: sim, AllowDebug: true})
	if err != nil {
		return attest.Policy{}, fmt.Errorf("join: this replica's own attestation does not verify: %w", err)
	}
	p := attest.Policy{AllowSimulated: sim, AllowDebug: c.Debug, RootFingerprint: c.RootFingerprint[:], PCRs: map[int][][]byte{}}
	for i, v := range comparedPCRs(c) {
		p.PCRs[i] = [][]byte{v}
	}
	return p, nil
}

// post sends body to url and decodes a 200 answer into out, returning the
// api.TLSKeyHash of the certificate the answer came with (nil without
// TLS). On not_leader with a leader URL it returns that URL; other error
// answers are returned as errors wrapping the *api.Error.
func (j *Joiner) post(ctx context.Context, url string, body []byte, out any) (next string, tlsKey []byte, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", nil, fmt.Errorf("join: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	c := j.HTTPClient
	if c == nil {
		c = DefaultHTTPClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("join: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return "", nil, fmt.Errorf("join: POST %s: reading the answer: %w", url, err)
	}
	if len(data) > MaxResponseSize {
		return "", nil, fmt.Errorf("join: POST %s: answer is larger than %d bytes", url, MaxResponseSize)
	}
	if resp.StatusCode != http.StatusOK {
		var er api.ErrorResponse
		if json.Unmarshal(data, &er) != nil || er.Error == nil || er.Error.Message == "" {
			return "", nil, fmt.Errorf("join: POST %s: HTTP %d: %.200q", url, resp.StatusCode, data)
		}
		er.Error.Status = resp.StatusCode
		if er.Error.Code == api.CodeNotLeader && er.Error.LeaderURL != "" {
			return er.Error.LeaderURL, nil, nil
		}
		return "", nil, fmt.Errorf("join: POST %s: %w", url, er.Error)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return "", nil, fmt.Errorf("join: POST %s: malformed answer: %v", url, err)
	}
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		tlsKey = api.TLSKeyHash(resp.TLS.PeerCertificates[0])
	}
	return "", tlsKey, nil
}
