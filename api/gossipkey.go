package api

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// GossipKeySize is the size of the gossip keys GenerateGossipKey makes
// (AES-256); keys of 16 and 24 bytes are accepted too.
const GossipKeySize = 32

// ErrNoGossipKey is wrapped by errors about a key list that holds no key.
var ErrNoGossipKey = errors.New("no gossip key")

// GenerateGossipKey returns a fresh gossip key from crypto/rand, base64
// (standard, padded) as references and --gossip-key hold it.
func GenerateGossipKey() (string, error) {
	k := make([]byte, GossipKeySize)
	if _, err := rand.Read(k); err != nil {
		return "", fmt.Errorf("generating a gossip key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

// ParseGossipKey decodes one base64 gossip key of 16, 24 or 32 bytes. Only
// the canonical spelling is accepted, so that a key has one form. Errors
// never repeat the key.
func ParseGossipKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || base64.StdEncoding.EncodeToString(k) != s {
		return nil, fmt.Errorf("malformed gossip key (%d characters): want standard padded base64 of 16, 24 or 32 bytes", len(s))
	}
	if len(k) != 16 && len(k) != 24 && len(k) != 32 {
		return nil, fmt.Errorf("malformed gossip key: %d bytes, want 16, 24 or 32", len(k))
	}
	return k, nil
}

// ParseGossipKeyList decodes a list of base64 gossip keys separated by
// commas, spaces or newlines, as --gossip-key, $VOUCH_GOSSIP_KEY and key
// files hold them: the first encrypts and the others are only accepted
// (for rotation). An empty list is an error wrapping ErrNoGossipKey.
func ParseGossipKeyList(s string) (primary []byte, extra [][]byte, err error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	if len(fields) == 0 {
		return nil, nil, ErrNoGossipKey
	}
	for i, f := range fields {
		k, err := ParseGossipKey(f)
		if err != nil {
			return nil, nil, fmt.Errorf("key %d of %d: %w", i+1, len(fields), err)
		}
		if i == 0 {
			primary = k
		} else {
			extra = append(extra, k)
		}
	}
	return primary, extra, nil
}

// GossipKeys decodes the reference's gossip keys: nil, nil, nil when it
// holds none (a reference written before gossip keys).
func (r *Ref) GossipKeys() (primary []byte, extra [][]byte, err error) {
	if r.GossipKey == "" {
		if len(r.GossipExtraKeys) > 0 {
			return nil, nil, errors.New("gossip_extra_keys without a gossip_key")
		}
		return nil, nil, nil
	}
	if primary, err = ParseGossipKey(r.GossipKey); err != nil {
		return nil, nil, fmt.Errorf("gossip_key: %w", err)
	}
	for i, s := range r.GossipExtraKeys {
		k, err := ParseGossipKey(s)
		if err != nil {
			return nil, nil, fmt.Errorf("gossip_extra_keys[%d]: %w", i, err)
		}
		extra = append(extra, k)
	}
	return primary, extra, nil
}
