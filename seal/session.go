package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hpke"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Sessions. One HPKE context per input costs an X25519 key generation and
// two Diffie-Hellman operations at the client and one at the runtime: about
// 160 µs of CPU per run, more than the function itself. A [Session] pays
// them once: the client sets up one HPKE context (the same suite, base
// mode) for a function, derives two keys from its exporter (RFC 9180,
// section 5.3), and seals each input with AES-256-GCM under a counter. The
// runtime derives the same keys from the session's enc, once, and keeps
// them in a [SessionCache]. HPKE's own multi-message context cannot serve
// here: it needs the messages in order, and concurrent HTTP requests
// arrive in any order.
//
// A session message is self-contained: a runtime that has never seen the
// session (it restarted, or evicted it) derives its keys from the enc again.
// The boot ID in the envelope and the replay cache keep the rules of
// single-shot inputs: no message opens in another boot, none opens twice.

const (
	// SessionOverhead is the most a session message adds to the input: enc,
	// the counter, the envelope header and the GCM tag: 82 bytes.
	SessionOverhead = EncSize + 8 + headerSize + tagSize
	// SessionOutputOverhead is what a sealed output adds in a session.
	SessionOutputOverhead = tagSize

	// MaxSessionMessages is how many inputs a Session seals before
	// [Session.Seal] refuses (ErrSessionSpent): far below GCM's limit for
	// one key, and it keeps a stolen session short-lived.
	MaxSessionMessages = 1 << 32

	sessionLabel       = "vouch/session/v1"
	sessionInputLabel  = "vouch session input key"
	sessionOutputLabel = "vouch session output key"
	sessionInputAAD    = "vouch/session-input/v1"
	sessionOutputAAD   = "vouch/session-output/v1"
)

// ErrSessionSpent: a session sealed MaxSessionMessages inputs; start a new
// one.
var ErrSessionSpent = errors.New("seal: session has sealed its maximum number of inputs; start a new session")

// Session seals inputs for one function (ID and checksum) of one runtime
// boot. It is safe for concurrent use: every input gets its own counter.
type Session struct {
	enc                  []byte
	in, out              cipher.AEAD
	functionID, checksum string
	bootID               []byte
	next                 atomic.Uint64
}

// NewSession sets up a session with the runtime whose HPKE public key is
// recipientPub, for the function functionID whose checksum is checksum,
// during the runtime boot bootID (from its identity).
func NewSession(recipientPub []byte, functionID, checksum string, bootID []byte) (*Session, error) {
	if len(bootID) != BootIDSize {
		return nil, fmt.Errorf("seal: boot ID is %d bytes, want %d: take it from the runtime's identity (GET /v1/identity)", len(bootID), BootIDSize)
	}
	pub, err := publicKey("recipient", recipientPub)
	if err != nil {
		return nil, err
	}
	if err := checkFunction(functionID, checksum); err != nil {
		return nil, err
	}
	enc, sender, err := hpke.NewSender(pub, kdf, aead, sessionInfo(functionID, checksum))
	if err != nil {
		return nil, fmt.Errorf("%w: cannot set up a session with the recipient key: %w", ErrInvalidKey, err)
	}
	keys, err := deriveSessionKeys(sender.Export)
	if err != nil {
		return nil, err
	}
	return &Session{enc: enc, in: keys.in, out: keys.out, functionID: functionID, checksum: checksum, bootID: append([]byte(nil), bootID...)}, nil
}

// FunctionID, Checksum and BootID say what the session seals for.
func (s *Session) FunctionID() string { return s.functionID }
func (s *Session) Checksum() string   { return s.checksum }
func (s *Session) BootID() []byte     { return append([]byte(nil), s.bootID...) }

// SessionInputOptions are the optional parts of a session message.
type SessionInputOptions struct {
	// SealOutput asks the runtime to seal the output in the session: open
	// it with [Session.OpenOutput].
	SealOutput bool
	// IssuedAt is the time written in the envelope; zero means time.Now().
	IssuedAt time.Time
}

// Seal encrypts input as the session's next message. It returns the
// message and its counter, which [Session.OpenOutput] needs.
func (s *Session) Seal(input []byte, opts *SessionInputOptions) (msg []byte, counter uint64, err error) {
	if opts == nil {
		opts = &SessionInputOptions{}
	}
	if len(input) > MaxInputSize {
		return nil, 0, fmt.Errorf("seal: input is %d bytes, more than the limit of %d", len(input), MaxInputSize)
	}
	counter = s.next.Add(1) - 1
	if counter >= MaxSessionMessages {
		return nil, 0, ErrSessionSpent
	}
	issuedAt := opts.IssuedAt
	if issuedAt.IsZero() {
		issuedAt = time.Now()
	}
	flag := byte(flagNoReply)
	if opts.SealOutput {
		flag = flagSessionReply
	}
	msg = make([]byte, 0, SessionOverhead+len(input))
	msg = append(msg, s.enc...)
	msg = binary.BigEndian.AppendUint64(msg, counter)
	env := appendEnvelope(make([]byte, 0, headerSize+len(input)), s.bootID, issuedAt, flag, nil, input)
	var nonce [12]byte
	binary.BigEndian.PutUint64(nonce[4:], counter)
	msg = s.in.Seal(msg, nonce[:], env, sessionAAD(sessionInputAAD, s.enc, counter, nil))
	return msg, counter, nil
}

// OpenOutput opens an output the runtime sealed in the session, in answer
// to the message with the given counter, whose plaintext input has the
// SHA-256 inputSHA256.
func (s *Session) OpenOutput(counter uint64, inputSHA256 [32]byte, sealed []byte) ([]byte, error) {
	if len(sealed) < SessionOutputOverhead || len(sealed) > MaxOutputSize+SessionOutputOverhead {
		return nil, fmt.Errorf("%w: sealed output is %d bytes, outside %d..%d", ErrMalformed, len(sealed), SessionOutputOverhead, MaxOutputSize+SessionOutputOverhead)
	}
	var nonce [12]byte
	binary.BigEndian.PutUint64(nonce[4:], counter)
	out, err := s.out.Open(nil, nonce[:], sealed, sessionAAD(sessionOutputAAD, s.enc, counter, inputSHA256[:]))
	if err != nil {
		return nil, &openError{what: "output", functionID: s.functionID, checksum: s.checksum, cause: err}
	}
	return out, nil
}

// sessionKeys are a session's two AEADs, as the runtime caches them.
type sessionKeys struct {
	enc                  []byte
	functionID, checksum string
	in, out              cipher.AEAD
}

func deriveSessionKeys(export func(string, int) ([]byte, error)) (*sessionKeys, error) {
	k := &sessionKeys{}
	for _, d := range []struct {
		label string
		to    *cipher.AEAD
	}{{sessionInputLabel, &k.in}, {sessionOutputLabel, &k.out}} {
		key, err := export(d.label, 32)
		if err != nil {
			return nil, fmt.Errorf("seal: deriving session keys: %w", err)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("seal: deriving session keys: %w", err)
		}
		if *d.to, err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("seal: deriving session keys: %w", err)
		}
	}
	return k, nil
}

// SessionCache keeps the keys of recent sessions at the runtime, so that
// only a session's first message pays for the HPKE decapsulation. It holds
// no replay state (the [ReplayCache] does), so evicting a session costs
// time, never safety. It is safe for concurrent use; the zero value holds
// DefaultSessionCapacity sessions.
type SessionCache struct {
	capacity int

	mu sync.Mutex
	m  map[[EncSize]byte]*sessionKeys
}

// DefaultSessionCapacity is how many sessions a SessionCache keeps by
// default: about 1 KiB each.
const DefaultSessionCapacity = 16384

// NewSessionCache returns a cache of up to capacity sessions (zero or less
// means the default).
func NewSessionCache(capacity int) *SessionCache {
	return &SessionCache{capacity: capacity}
}

func (c *SessionCache) get(enc []byte) *sessionKeys {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[[EncSize]byte(enc)]
}

func (c *SessionCache) put(k *sessionKeys) {
	capacity := c.capacity
	if capacity <= 0 {
		capacity = DefaultSessionCapacity
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[EncSize]byte]*sessionKeys{}
	}
	for e := range c.m { // evict arbitrary entries when full
		if len(c.m) < capacity {
			break
		}
		delete(c.m, e)
	}
	c.m[[EncSize]byte(k.enc)] = k
}

// Len returns how many sessions the cache holds.
func (c *SessionCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// OpenSessionInput opens a session message (see [Session.Seal]) for the
// function functionID whose checksum is checksum, and checks, like
// [PrivateKey.OpenInput], that it was sealed for cache's boot, is fresh at
// now and is not a replay. sessions, which must not be nil, keeps the
// derived keys; a session it does not hold is set up again from the
// message's enc.
func (k *PrivateKey) OpenSessionInput(functionID, checksum string, msg []byte, sessions *SessionCache, cache *ReplayCache, now time.Time) (*OpenedInput, error) {
	if cache == nil || sessions == nil {
		return nil, errors.New("seal: OpenSessionInput needs a ReplayCache and a SessionCache")
	}
	if err := checkFunction(functionID, checksum); err != nil {
		return nil, err
	}
	const minSize = EncSize + 8 + headerSize + tagSize
	if len(msg) < minSize {
		return nil, fmt.Errorf("%w: session message is %d bytes, less than the minimum of %d", ErrMalformed, len(msg), minSize)
	}
	if len(msg) > MaxInputSize+SessionOverhead {
		return nil, fmt.Errorf("%w: session message is %d bytes, more than the limit of %d", ErrMalformed, len(msg), MaxInputSize+SessionOverhead)
	}
	enc, counter := msg[:EncSize], binary.BigEndian.Uint64(msg[EncSize:EncSize+8])
	keys := sessions.get(enc)
	if keys != nil && (keys.functionID != functionID || keys.checksum != checksum) {
		// The same enc for another function: its keys would come from
		// another info. Derive them for this function (and fail to open).
		keys = nil
	}
	fresh := keys == nil
	if fresh {
		r, err := hpke.NewRecipient(enc, k.hpke, kdf, aead, sessionInfo(functionID, checksum))
		if err != nil {
			return nil, &openError{what: "input", functionID: functionID, checksum: checksum, cause: err}
		}
		if keys, err = deriveSessionKeys(r.Export); err != nil {
			return nil, err
		}
		keys.enc, keys.functionID, keys.checksum = append([]byte(nil), enc...), functionID, checksum
	}
	var nonce [12]byte
	binary.BigEndian.PutUint64(nonce[4:], counter)
	env, err := keys.in.Open(nil, nonce[:], msg[EncSize+8:], sessionAAD(sessionInputAAD, enc, counter, nil))
	if err != nil {
		return nil, &openError{what: "input", functionID: functionID, checksum: checksum, cause: err}
	}
	if fresh {
		// Only a session whose message opened is worth keeping: garbage
		// encs cannot fill the cache.
		sessions.put(keys)
	}
	in, err := parseEnvelope(env, cache, true)
	if err != nil {
		return nil, err
	}
	var id [EncSize + 8]byte
	copy(id[:], msg[:EncSize+8])
	if err := cache.admit(id[:], in.IssuedAt.UnixMilli(), now.UnixMilli()); err != nil {
		return nil, err
	}
	in.session, in.counter = keys, counter
	return in, nil
}

// SealSessionOutput seals output in the session the input came in, as the
// answer to it; inputSHA256 is the SHA-256 of in.Input. It fails if the
// input did not come in a session.
func (in *OpenedInput) SealSessionOutput(inputSHA256 [32]byte, output []byte) ([]byte, error) {
	if in.session == nil {
		return nil, errors.New("seal: the input did not come in a session")
	}
	if len(output) > MaxOutputSize {
		return nil, fmt.Errorf("seal: output is %d bytes, more than the limit of %d", len(output), MaxOutputSize)
	}
	var nonce [12]byte
	binary.BigEndian.PutUint64(nonce[4:], in.counter)
	return in.session.out.Seal(nil, nonce[:], output, sessionAAD(sessionOutputAAD, in.session.enc, in.counter, inputSHA256[:])), nil
}

// sessionInfo returns "vouch/session/v1" || 0x00 || lp(functionID) || lp(checksum).
func sessionInfo(functionID, checksum string) []byte {
	b := make([]byte, 0, len(sessionLabel)+1+4+len(functionID)+4+len(checksum))
	b = append(b, sessionLabel...)
	b = append(b, 0)
	b = appendLP(b, functionID)
	return appendLP(b, checksum)
}

// sessionAAD returns label || 0x00 || enc || counter (8 bytes) || extra.
func sessionAAD(label string, enc []byte, counter uint64, extra []byte) []byte {
	b := make([]byte, 0, len(label)+1+len(enc)+8+len(extra))
	b = append(b, label...)
	b = append(b, 0)
	b = append(b, enc...)
	b = binary.BigEndian.AppendUint64(b, counter)
	return append(b, extra...)
}
