package api

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/vouch-dev/vouch/internal/secretfile"
	"github.com/vouch-dev/vouch/receipt"
)

// Ref is a function reference: everything a client needs to call one
// function on one runtime and to know what to trust. `vouch token -o json`
// writes it; `vouch run --ref` and `vouch node --ref` read it. The first
// three fields keep the names of the service vouch replaces.
//
// A reference holds a bearer token and the cluster's gossip key: keep it
// private (WriteRefFile writes mode 0600, and LoadRef notes a file that
// others can read, see Ref.FileWarning).
type Ref struct {
	FunctionID       string `json:"function_id"`
	FunctionChecksum string `json:"function_checksum"`
	FunctionToken    string `json:"function_token"`
	EnclaveURL       string `json:"enclave_url"`
	// EnclaveURLs lists every replica of a replicated runtime, in the
	// order a client tries them; EnclaveURL, kept for older readers, is
	// then the first of them.
	EnclaveURLs []string `json:"enclave_urls,omitempty"`
	Trust       Trust    `json:"trust"`
	// GossipKey is the cluster's gossip key (base64, 16, 24 or 32 bytes):
	// `vouch node` encrypts and authenticates gossip with it. It belongs
	// to the cluster, so every member's reference holds the same one;
	// GossipExtraKeys are accepted beside it during a rotation.
	GossipKey       string   `json:"gossip_key,omitempty"`
	GossipExtraKeys []string `json:"gossip_extra_keys,omitempty"`

	// file and mode are where LoadRef read the reference, and that file's
	// permissions.
	file string
	mode fs.FileMode
}

// Trust says which runtime identities a client accepts.
type Trust struct {
	// Platform is the attestation platform expected: "aws-nitro" or
	// "SIMULATED".
	Platform string `json:"platform"`
	// AllowSimulated must be true for a SIMULATED platform: whoever wrote
	// the reference accepted simulated attestation on purpose. It allows
	// only documents of the simulated root named by RootFingerprint, which
	// is then required: a reference never allows any simulated document.
	AllowSimulated bool `json:"allow_simulated,omitempty"`
	// RootFingerprint pins the attestation root (SHA-256 of its DER, hex).
	RootFingerprint string `json:"root_fingerprint,omitempty"`
	// PCRs maps a PCR index ("0") to the hex values accepted for it.
	PCRs map[string][]string `json:"pcrs,omitempty"`
	// KeyID optionally pins the runtime's receipt key (its fingerprint,
	// receipt.KeyID): a client then refuses a runtime whose attested key is
	// another, even one that passes the rest of the policy. `vouch token -o
	// json` sets it to the key it saw.
	KeyID string `json:"key_id,omitempty"`
}

// MaxRefSize bounds a reference file.
const MaxRefSize = 64 << 10

// ErrRefReadable is wrapped by Ref.FileWarning: the file a reference was
// loaded from lets group or others read its bearer token.
var ErrRefReadable = errors.New("function reference file is readable by group or others")

// LoadRef reads and checks a reference file. A file that group or others
// can read still loads (the caller decides what to do); Ref.FileWarning
// reports it.
func LoadRef(path string) (*Ref, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r Ref
	if err := DecodeStrict(f, MaxRefSize, &r); err != nil {
		return nil, fmt.Errorf("function reference %s: %w", path, err)
	}
	if err := r.Check(); err != nil {
		return nil, fmt.Errorf("function reference %s: %w", path, err)
	}
	r.file = path
	if fi, err := f.Stat(); err == nil {
		r.mode = fi.Mode()
	}
	return &r, nil
}

// FileWarning returns an error wrapping ErrRefReadable if the reference was
// loaded (LoadRef) from a file whose mode lets group or others read it, and
// nil otherwise. The reference is still usable; callers should warn.
func (r *Ref) FileWarning() error {
	if r == nil || r.file == "" || runtime.GOOS == "windows" || r.mode.Perm()&0o077 == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s has mode %04o, and it holds a bearer token (function_token) and may hold the cluster's gossip key; run: chmod 600 %s",
		ErrRefReadable, r.file, r.mode.Perm(), r.file)
}

// WriteRefFile writes r to path as indented JSON with mode 0600, whole or
// not at all. It refuses to replace an existing file (the error wraps
// fs.ErrExist) unless overwrite is set; then it replaces it atomically.
func WriteRefFile(path string, r *Ref, overwrite bool) error {
	if err := r.Check(); err != nil {
		return fmt.Errorf("function reference: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if overwrite {
		return secretfile.Replace(path, data)
	}
	return secretfile.Create(path, data)
}

// NormalizeChecksum returns s as a function checksum in the form every signed
// document and the runtime use: 64 hex digits (the SHA-256 of a bundle),
// lower-cased. Upper-case digits are accepted and lower-cased; anything
// else is an error that names s. The SDK's entry points (client.Client's
// methods, node.New) call it, so a checksum copied in upper case works.
func NormalizeChecksum(s string) (string, error) {
	if len(s) != 64 {
		return "", fmt.Errorf("function checksum %q is %d characters, not 64 hex digits", clipChecksum(s), len(s))
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", fmt.Errorf("function checksum %q is not 64 hex digits", s)
	}
	return strings.ToLower(s), nil
}

// clipChecksum shortens s for an error message.
func clipChecksum(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// ParseRef decodes and checks a reference. A reference is a file format
// with one spelling for each value: upper-case hex is refused, not
// lower-cased (docs/FORMATS.md).
func ParseRef(data []byte) (*Ref, error) {
	var r Ref
	if len(data) > MaxRefSize {
		return nil, fmt.Errorf("function reference is larger than %d bytes", MaxRefSize)
	}
	if err := UnmarshalStrict(data, &r); err != nil {
		return nil, fmt.Errorf("function reference: %w", err)
	}
	if err := r.Check(); err != nil {
		return nil, fmt.Errorf("function reference: %w", err)
	}
	return &r, nil
}

// Check validates a reference's fields.
func (r *Ref) Check() error {
	if r.FunctionID == "" || len(r.FunctionID) > 128 || strings.Trim(r.FunctionID, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		return fmt.Errorf("function_id %q must be 1-128 characters of A-Z a-z 0-9 . _ -", r.FunctionID)
	}
	if !receipt.IsDigest(r.FunctionChecksum) {
		return fmt.Errorf("function_checksum %q is not 64 lowercase hex digits", r.FunctionChecksum)
	}
	if r.EnclaveURL != "" {
		if err := checkEnclaveURL(r.EnclaveURL); err != nil {
			return fmt.Errorf("enclave_url %w", err)
		}
	}
	if r.EnclaveURLs != nil && len(r.EnclaveURLs) == 0 {
		// One spelling: an empty list would read back as no list.
		return fmt.Errorf("enclave_urls is an empty list; leave it out")
	}
	if len(r.EnclaveURLs) > MaxReplicas {
		return fmt.Errorf("enclave_urls has %d entries; at most %d", len(r.EnclaveURLs), MaxReplicas)
	}
	seen := map[string]bool{}
	for i, u := range r.EnclaveURLs {
		if err := checkEnclaveURL(u); err != nil {
			return fmt.Errorf("enclave_urls[%d] %w", i, err)
		}
		if seen[u] {
			return fmt.Errorf("enclave_urls lists %q twice", u)
		}
		seen[u] = true
	}
	if len(r.EnclaveURLs) > 0 && r.EnclaveURL != "" && r.EnclaveURL != r.EnclaveURLs[0] {
		return fmt.Errorf("enclave_url %q must be the first of enclave_urls (%q)", r.EnclaveURL, r.EnclaveURLs[0])
	}
	if _, _, err := r.GossipKeys(); err != nil {
		return err
	}
	return r.Trust.Check()
}

// MaxReplicas bounds the replicas a reference lists.
const MaxReplicas = 16

func checkEnclaveURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

// URLs returns the runtime URLs to try, in order: EnclaveURLs, or else
// EnclaveURL alone; nil if the reference names none.
func (r *Ref) URLs() []string {
	if len(r.EnclaveURLs) > 0 {
		return append([]string(nil), r.EnclaveURLs...)
	}
	if r.EnclaveURL != "" {
		return []string{r.EnclaveURL}
	}
	return nil
}

// Check validates a trust block.
func (t *Trust) Check() error {
	switch t.Platform {
	case "", "aws-nitro":
		if t.AllowSimulated {
			return fmt.Errorf("trust.allow_simulated is true but trust.platform is %q; it applies only to platform \"SIMULATED\"", t.Platform)
		}
	case "SIMULATED":
		if !t.AllowSimulated {
			return fmt.Errorf("trust.platform is SIMULATED but trust.allow_simulated is not true")
		}
		if t.RootFingerprint == "" {
			return fmt.Errorf("trust.allow_simulated needs trust.root_fingerprint: a trust block allows SIMULATED attestation only from the one simulated root it pins, never from any (anyone can make a simulated root)")
		}
	default:
		return fmt.Errorf("trust.platform %q is neither \"aws-nitro\" nor \"SIMULATED\"", t.Platform)
	}
	if t.RootFingerprint != "" && !receipt.IsDigest(t.RootFingerprint) {
		return fmt.Errorf("trust.root_fingerprint is not 64 lowercase hex digits")
	}
	if t.KeyID != "" && !receipt.IsDigest(t.KeyID) {
		return fmt.Errorf("trust.key_id is not 64 lowercase hex digits")
	}
	_, err := t.PCRValues()
	return err
}

// ParsePCRIndex reads a PCR index in its one canonical spelling, 0 to 31:
// "01" or "+1" would silently merge with "1".
func ParsePCRIndex(k string) (int, bool) {
	i, err := strconv.Atoi(k)
	return i, err == nil && i >= 0 && i <= 31 && strconv.Itoa(i) == k
}

// ParsePCRValue reads a PCR value: 32, 48 or 64 bytes of lowercase hex.
func ParsePCRValue(v string) ([]byte, bool) {
	b, err := hex.DecodeString(v)
	return b, err == nil && (len(b) == 32 || len(b) == 48 || len(b) == 64) && hex.EncodeToString(b) == v
}

// PCRValues decodes the PCR allow-list.
func (t *Trust) PCRValues() (map[int][][]byte, error) {
	if len(t.PCRs) == 0 {
		return nil, nil
	}
	out := make(map[int][][]byte, len(t.PCRs))
	for k, vals := range t.PCRs {
		// Only the canonical spelling: "01" or "+1" would silently merge
		// with "1" into one list of alternatives.
		i, ok := ParsePCRIndex(k)
		if !ok {
			return nil, fmt.Errorf("trust.pcrs: index %q is not 0-31", k)
		}
		if len(vals) == 0 {
			return nil, fmt.Errorf("trust.pcrs[%s] lists no values", k)
		}
		for _, v := range vals {
			b, ok := ParsePCRValue(strings.ToLower(v))
			if !ok {
				return nil, fmt.Errorf("trust.pcrs[%s]: %q is not a 32, 48 or 64-byte hex value", k, v)
			}
			out[i] = append(out[i], b)
		}
	}
	return out, nil
}
