package attest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"unicode/utf8"
)

// document is the payload of a Nitro attestation document:
//
//	AttestationDocument = {
//	    module_id: text, digest: "SHA384" / "SHA256", timestamp: uint .size 8,
//	    pcrs: { + index => bytes .size (32/48/64) },
//	    certificate: bytes .size (1..1024), cabundle: [ * bytes .size (1..1024) ],
//	    ? public_key: bytes .size (1..1024) / null,
//	    ? user_data: bytes .size (0..1024) / null,
//	    ? nonce: bytes .size (0..1024) / null,
//	}
//
// A nil PublicKey, UserData or Nonce is CBOR null.
type document struct {
	ModuleID    string
	Digest      string
	Timestamp   uint64 // milliseconds since the Unix epoch, UTC
	PCRs        map[int][]byte
	Certificate []byte
	CABundle    [][]byte
	PublicKey   []byte
	UserData    []byte
	Nonce       []byte
}

// Field names, in the order the Nitro Secure Module writes them.
const (
	fieldModuleID    = "module_id"
	fieldDigest      = "digest"
	fieldTimestamp   = "timestamp"
	fieldPCRs        = "pcrs"
	fieldCertificate = "certificate"
	fieldCABundle    = "cabundle"
	fieldPublicKey   = "public_key"
	fieldUserData    = "user_data"
	fieldNonce       = "nonce"

	// digestSHA384 is the digest of every Nitro document (48-byte PCRs);
	// digestSHA256 that of every simulated document (32-byte PCRs). Which
	// one a document may use depends on its root, so verify checks it.
	digestSHA384 = "SHA384"
	digestSHA256 = "SHA256"
)

// CBOR major types.
const (
	majorUint  = 0
	majorNeg   = 1
	majorBytes = 2
	majorText  = 3
	majorArray = 4
	majorMap   = 5
	majorTag   = 6
	majorOther = 7

	cborNull = 0xf6
)

// marshal encodes d exactly as the Nitro Secure Module does: a definite
// map of nine entries in Nitro's field order, shortest-form heads, PCRs in
// ascending index order, and null for absent optional fields.
func (d *document) marshal() []byte {
	b := make([]byte, 0, 1024+len(d.Certificate)+len(d.PublicKey)+len(d.UserData)+len(d.Nonce))
	b = appendHead(b, majorMap, 9)
	b = appendText(b, fieldModuleID)
	b = appendText(b, d.ModuleID)
	b = appendText(b, fieldDigest)
	b = appendText(b, d.Digest)
	b = appendText(b, fieldTimestamp)
	b = appendHead(b, majorUint, d.Timestamp)
	b = appendText(b, fieldPCRs)
	idx := make([]int, 0, len(d.PCRs))
	for i := range d.PCRs {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	b = appendHead(b, majorMap, uint64(len(idx)))
	for _, i := range idx {
		b = appendHead(b, majorUint, uint64(i))
		b = appendBytes(b, d.PCRs[i])
	}
	b = appendText(b, fieldCertificate)
	b = appendBytes(b, d.Certificate)
	b = appendText(b, fieldCABundle)
	b = appendHead(b, majorArray, uint64(len(d.CABundle)))
	for _, c := range d.CABundle {
		b = appendBytes(b, c)
	}
	b = appendText(b, fieldPublicKey)
	b = appendOptBytes(b, d.PublicKey)
	b = appendText(b, fieldUserData)
	b = appendOptBytes(b, d.UserData)
	b = appendText(b, fieldNonce)
	b = appendOptBytes(b, d.Nonce)
	return b
}

func appendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= math.MaxUint8:
		return append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, m|27), n)
	}
}

func appendText(b []byte, s string) []byte {
	return append(appendHead(b, majorText, uint64(len(s))), s...)
}

func appendBytes(b, p []byte) []byte {
	return append(appendHead(b, majorBytes, uint64(len(p))), p...)
}

func appendOptBytes(b, p []byte) []byte {
	if p == nil {
		return append(b, cborNull)
	}
	return appendBytes(b, p)
}

// errTruncated: an item runs past the end of the payload.
var errTruncated = errors.New("truncated CBOR")

// cborReader is a minimal strict CBOR decoder for the attestation payload:
// definite lengths only, no tags, no floats, bounds checked everywhere.
type cborReader struct {
	b   []byte
	off int
}

// head reads an initial byte and its argument. For major type 7 it accepts
// only null (returned as majorOther with arg 22).
func (r *cborReader) head() (major byte, arg uint64, err error) {
	if r.off >= len(r.b) {
		return 0, 0, errTruncated
	}
	ib := r.b[r.off]
	r.off++
	major, ai := ib>>5, ib&0x1f
	switch {
	case ai < 24:
		arg = uint64(ai)
	case ai <= 27:
		n := 1 << (ai - 24) // 1, 2, 4 or 8 bytes
		if len(r.b)-r.off < n {
			return 0, 0, errTruncated
		}
		for _, c := range r.b[r.off : r.off+n] {
			arg = arg<<8 | uint64(c)
		}
		r.off += n
	case ai == 31:
		return 0, 0, errors.New("indefinite-length CBOR item not allowed")
	default:
		return 0, 0, fmt.Errorf("reserved CBOR additional information %d", ai)
	}
	switch major {
	case majorTag:
		return 0, 0, errors.New("CBOR tag not allowed in attestation payload")
	case majorOther:
		if ib != cborNull {
			return 0, 0, fmt.Errorf("CBOR simple value or float 0x%02x not allowed", ib)
		}
	}
	return major, arg, nil
}

func (r *cborReader) remaining() int { return len(r.b) - r.off }

func (r *cborReader) take(n uint64) ([]byte, error) {
	if n > uint64(r.remaining()) {
		return nil, errTruncated
	}
	p := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return p, nil
}

func typeName(major byte) string {
	return [...]string{"unsigned integer", "negative integer", "byte string", "text string", "array", "map", "tag", "null/simple value"}[major&7]
}

func (r *cborReader) text() (string, error) {
	major, n, err := r.head()
	if err != nil {
		return "", err
	}
	if major != majorText {
		return "", fmt.Errorf("want text string, got %s", typeName(major))
	}
	p, err := r.take(n)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(p) {
		return "", errors.New("text string is not valid UTF-8")
	}
	return string(p), nil
}

// bytes reads a byte string of lo..hi bytes. If nullable, null yields
// (nil, nil).
func (r *cborReader) bytes(lo, hi int, nullable bool) ([]byte, error) {
	major, n, err := r.head()
	if err != nil {
		return nil, err
	}
	if major == majorOther && nullable {
		return nil, nil
	}
	if major != majorBytes {
		return nil, fmt.Errorf("want byte string, got %s", typeName(major))
	}
	if n < uint64(lo) || n > uint64(hi) {
		return nil, fmt.Errorf("byte string of %d bytes, want %d to %d", n, lo, hi)
	}
	p, err := r.take(n)
	if err != nil {
		return nil, err
	}
	return append(make([]byte, 0, len(p)), p...), nil
}

// count reads the head of an array or map and bounds its count by the bytes
// left (each element takes at least one byte).
func (r *cborReader) count(want byte) (int, error) {
	major, n, err := r.head()
	if err != nil {
		return 0, err
	}
	if major != want {
		return 0, fmt.Errorf("want %s, got %s", typeName(want), typeName(major))
	}
	if n > uint64(r.remaining()) {
		return 0, errTruncated
	}
	return int(n), nil
}

// parseDocument decodes and checks an attestation payload. It enforces the
// field set, types and sizes of AWS's specification; certificates are only
// parsed later.
func parseDocument(payload []byte) (*document, error) {
	d, err := decodeDocument(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return d, nil
}

func decodeDocument(payload []byte) (*document, error) {
	if len(payload) == 0 {
		return nil, errors.New("empty payload")
	}
	if len(payload) > MaxPayloadLen {
		return nil, fmt.Errorf("payload is %d bytes, at most %d allowed", len(payload), MaxPayloadLen)
	}
	r := &cborReader{b: payload}
	n, err := r.count(majorMap)
	if err != nil {
		return nil, fmt.Errorf("payload: %v", err)
	}
	if n > 9 {
		return nil, fmt.Errorf("payload has %d fields, at most 9 allowed", n)
	}
	d := &document{}
	seen := make(map[string]bool, n)
	for range n {
		key, err := r.text()
		if err != nil {
			return nil, fmt.Errorf("payload key: %v", err)
		}
		if seen[key] {
			return nil, fmt.Errorf("duplicate field %q", key)
		}
		seen[key] = true
		if err := d.decodeField(r, key); err != nil {
			return nil, fmt.Errorf("field %s: %v", key, err)
		}
	}
	if r.remaining() != 0 {
		return nil, fmt.Errorf("%d bytes of trailing data after payload", r.remaining())
	}
	for _, f := range []string{fieldModuleID, fieldDigest, fieldTimestamp, fieldPCRs, fieldCertificate, fieldCABundle} {
		if !seen[f] {
			return nil, fmt.Errorf("missing mandatory field %s", f)
		}
	}
	return d, nil
}

func (d *document) decodeField(r *cborReader, key string) error {
	var err error
	switch key {
	case fieldModuleID:
		if d.ModuleID, err = r.text(); err != nil {
			return err
		}
		if d.ModuleID == "" {
			return errors.New("empty")
		}
	case fieldDigest:
		if d.Digest, err = r.text(); err != nil {
			return err
		}
		if d.Digest != digestSHA384 && d.Digest != digestSHA256 {
			return fmt.Errorf("want %q (or %q for a simulated document), got %q", digestSHA384, digestSHA256, d.Digest)
		}
	case fieldTimestamp:
		major, v, err := r.head()
		if err != nil {
			return err
		}
		if major != majorUint {
			return fmt.Errorf("want unsigned integer, got %s", typeName(major))
		}
		if v == 0 || v > math.MaxInt64 {
			return fmt.Errorf("out of range: %d", v)
		}
		d.Timestamp = v
	case fieldPCRs:
		n, err := r.count(majorMap)
		if err != nil {
			return err
		}
		if n < 1 || n > MaxPCRs {
			return fmt.Errorf("%d PCRs, want 1 to %d", n, MaxPCRs)
		}
		d.PCRs = make(map[int][]byte, n)
		for range n {
			major, idx, err := r.head()
			if err != nil {
				return err
			}
			if major != majorUint {
				return fmt.Errorf("PCR index: want unsigned integer, got %s", typeName(major))
			}
			if idx >= MaxPCRs {
				return fmt.Errorf("PCR index %d out of range [0, %d)", idx, MaxPCRs)
			}
			if _, dup := d.PCRs[int(idx)]; dup {
				return fmt.Errorf("duplicate PCR index %d", idx)
			}
			v, err := r.bytes(32, 64, false)
			if err != nil {
				return fmt.Errorf("PCR%d: %v", idx, err)
			}
			if l := len(v); l != 32 && l != 48 && l != 64 {
				return fmt.Errorf("PCR%d is %d bytes, want 32, 48 or 64", idx, l)
			}
			d.PCRs[int(idx)] = v
		}
	case fieldCertificate:
		if d.Certificate, err = r.bytes(1, MaxCertLen, false); err != nil {
			return err
		}
	case fieldCABundle:
		n, err := r.count(majorArray)
		if err != nil {
			return err
		}
		if n < 1 {
			return errors.New("empty CA bundle")
		}
		d.CABundle = make([][]byte, 0, n)
		for i := range n {
			c, err := r.bytes(1, MaxCertLen, false)
			if err != nil {
				return fmt.Errorf("entry %d: %v", i, err)
			}
			d.CABundle = append(d.CABundle, c)
		}
	case fieldPublicKey:
		if d.PublicKey, err = r.bytes(1, MaxPublicKeyLen, true); err != nil {
			return err
		}
	case fieldUserData:
		if d.UserData, err = r.bytes(0, MaxUserDataLen, true); err != nil {
			return err
		}
	case fieldNonce:
		if d.Nonce, err = r.bytes(0, MaxNonceLen, true); err != nil {
			return err
		}
	default:
		return errors.New("unknown field")
	}
	return nil
}
