package join

import (
	"crypto/ecdh"
	"crypto/hpke"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/enclave/internal/servicekeys"
	"github.com/vouch-dev/vouch/internal/canon"
)

// Paths of the join endpoints, both POST.
const (
	ChallengePath = "/v1/replicas/challenge"
	JoinPath      = "/v1/replicas/join"
)

// Domain tags of the canonical encodings.
const (
	// UserDataTag starts the user_data of a joiner's attestation.
	UserDataTag = "vouch/join/v1"
	// KeysInfoTag starts the HPKE info of the sealed service keys.
	KeysInfoTag = "vouch/join/keys/v1"
)

// Limits.
const (
	// NonceSize is the size of a challenge.
	NonceSize = 32
	// ChallengeTTL is how long a challenge stays usable.
	ChallengeTTL = 60 * time.Second
	// MaxChallenges bounds the outstanding challenges of a member; more are
	// refused with [ErrBusy] until some are used or expire.
	MaxChallenges = 1024
	// MaxRequestSize bounds the body of a join request.
	MaxRequestSize = 64 << 10
	// MaxResponseSize bounds the body of a join response.
	MaxResponseSize = 64 << 10
	// MaxRedirects is how many not_leader redirects [Joiner.Join] follows.
	MaxRedirects = 3
	// maxSealedKeys bounds the sealed keys a joiner opens.
	maxSealedKeys = 4096
	// sealedOverhead is enc (32 bytes) plus the AES-GCM tag (16 bytes).
	sealedOverhead = 32 + 16
)

// Errors. Refusals of [Member.Admit] wrap ErrRefused and, where it names the
// cause, the attest package's sentinel (attest.ErrUntrustedRoot,
// attest.ErrPCR, attest.ErrSimulated, ...) or ErrChallenge.
var (
	// ErrRefused: the member refused the join request.
	ErrRefused = errors.New("join: refused")
	// ErrChallenge: the document's nonce is not an outstanding challenge of
	// this member (unknown, expired or already used).
	ErrChallenge = errors.New("join: nonce is not an outstanding challenge of this member")
	// ErrBusy: the member has MaxChallenges outstanding challenges.
	ErrBusy = errors.New("join: too many outstanding join challenges")
	// ErrMember: the member's answer does not prove that it holds the
	// service keys it sent (bad attestation, other keys, undecryptable).
	ErrMember = errors.New("join: member's answer refused")
	// ErrMalformed: bytes that do not decode (user_data, sealed keys).
	ErrMalformed = errors.New("join: malformed")
)

// Request is the body of POST /v1/replicas/join. Everything the member
// needs is inside the attested user_data.
type Request struct {
	Attestation []byte `json:"attestation"`
}

// Response answers a Request: the service keys sealed to the joiner and
// the member's own identity document over the joiner's nonce.
type Response struct {
	SealedKeys  []byte `json:"sealed_keys"`
	Attestation []byte `json:"attestation"`
}

// Challenge is the body of the answer to POST /v1/replicas/challenge.
type Challenge struct {
	Nonce []byte `json:"nonce"`
}

// Admission is a joiner the member admitted: what its attestation bound.
type Admission struct {
	ReplicaID string
	RaftAddr  string
	APIURL    string
}

// userData encodes what a joiner attests: String(UserDataTag)
// String(replica_id) String(raft_addr) String(api_url).
func userData(a Admission) []byte {
	return canon.New(UserDataTag).String(a.ReplicaID).String(a.RaftAddr).String(a.APIURL).Message()
}

// parseUserData decodes and checks userData.
func parseUserData(b []byte) (Admission, error) {
	r := canon.NewReader(b)
	tag := r.String()
	if r.Err() == nil && tag != UserDataTag {
		return Admission{}, fmt.Errorf("%w: join user_data: tag %q, want %q", ErrMalformed, tag, UserDataTag)
	}
	a := Admission{ReplicaID: r.String(), RaftAddr: r.String(), APIURL: r.String()}
	if err := r.Done(); err != nil {
		return Admission{}, fmt.Errorf("%w: join user_data: %v", ErrMalformed, err)
	}
	if err := a.check(); err != nil {
		return Admission{}, err
	}
	return a, nil
}

// check validates the three fields.
func (a Admission) check() error {
	if !api.ValidReplicaID(a.ReplicaID) {
		return fmt.Errorf("%w: join user_data: replica ID %q must be 1-64 characters of a-z 0-9 . _ -", ErrMalformed, a.ReplicaID)
	}
	if err := checkRaftAddr(a.RaftAddr); err != nil {
		return fmt.Errorf("%w: join user_data: %v", ErrMalformed, err)
	}
	if err := checkAPIURL(a.APIURL); err != nil {
		return fmt.Errorf("%w: join user_data: %v", ErrMalformed, err)
	}
	return nil
}

func checkRaftAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("raft address %q is not HOST:PORT: %v", addr, err)
	}
	if host == "" {
		return fmt.Errorf("raft address %q has no host", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("raft address %q has no valid port (1-65535)", addr)
	}
	return nil
}

func checkAPIURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("API URL %q: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("API URL %q must be http:// or https://", s)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("API URL %q must be scheme://host[:port][/path], with no user, query or fragment", s)
	}
	return nil
}

// HPKE suite of the sealed keys.
var (
	kem  = hpke.DHKEM(ecdh.X25519())
	kdf  = hpke.HKDFSHA256()
	aead = hpke.AES256GCM()
)

// keysInfo is the HPKE info: String(KeysInfoTag) String(replica_id)
// Bytes(nonce).
func keysInfo(replicaID string, nonce []byte) []byte {
	return canon.New(KeysInfoTag).String(replicaID).Bytes(nonce).Message()
}

// sealKeys seals keys to the joiner's X25519 public key.
func sealKeys(pub []byte, replicaID string, nonce []byte, keys *servicekeys.Keys) ([]byte, error) {
	pk, err := kem.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("joiner's public key: %w", err)
	}
	return hpke.Seal(pk, kdf, aead, keysInfo(replicaID, nonce), keys.Marshal())
}

// openKeys opens sealed keys with the joiner's ephemeral private key.
func openKeys(priv *ecdh.PrivateKey, replicaID string, nonce, sealed []byte) (*servicekeys.Keys, error) {
	if len(sealed) < sealedOverhead || len(sealed) > maxSealedKeys {
		return nil, fmt.Errorf("%w: sealed keys: %d bytes, want %d to %d", ErrMalformed, len(sealed), sealedOverhead, maxSealedKeys)
	}
	k, err := hpke.NewDHKEMPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	plain, err := hpke.Open(k, kdf, aead, keysInfo(replicaID, nonce), sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed keys do not open with this joiner's key, replica ID and nonce", ErrMember)
	}
	keys, err := servicekeys.Unmarshal(plain) // keys.Secret aliases plain: do not clear it
	if err != nil {
		return nil, fmt.Errorf("%w: sealed keys: %v", ErrMember, err)
	}
	return keys, nil
}
