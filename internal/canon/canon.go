// Package canon builds the canonical byte strings that vouch signs.
//
// Every signed object in vouch (receipts, function statements, leader
// certificates) is signed over bytes produced by this package, never over
// JSON. The encoding is deliberately tiny so that it can be recomputed in any
// language (docs/FORMATS.md, "Canonical encoding"):
//
//   - a message starts with its domain tag, encoded as a string;
//   - a string or byte string is a 4-byte big-endian length followed by the
//     bytes;
//   - an unsigned integer is 8 bytes big-endian;
//   - a signed integer is its two's-complement 8 bytes big-endian.
//
// Fields follow in the fixed order the object's documentation gives. There
// are no field names, no optional fields and no padding, so two different
// objects never share an encoding.
package canon

import (
	"encoding/binary"
	"errors"
	"math"
)

// ErrTruncated reports a canonical message that ends before its last field.
var ErrTruncated = errors.New("canonical message is truncated")

// Builder appends fields to a canonical message. The zero value is an empty
// message; start it with Tag.
type Builder struct {
	buf []byte
}

// New returns a Builder whose message starts with the domain tag.
func New(tag string) *Builder {
	b := &Builder{buf: make([]byte, 0, 256)}
	b.String(tag)
	return b
}

// String appends a length-prefixed string.
func (b *Builder) String(s string) *Builder {
	b.buf = binary.BigEndian.AppendUint32(b.buf, uint32(len(s)))
	b.buf = append(b.buf, s...)
	return b
}

// Bytes appends a length-prefixed byte string.
func (b *Builder) Bytes(p []byte) *Builder {
	if len(p) > math.MaxUint32 {
		panic("canon: byte string longer than 4 GiB")
	}
	b.buf = binary.BigEndian.AppendUint32(b.buf, uint32(len(p)))
	b.buf = append(b.buf, p...)
	return b
}

// Uint64 appends an unsigned integer as 8 bytes big-endian.
func (b *Builder) Uint64(v uint64) *Builder {
	b.buf = binary.BigEndian.AppendUint64(b.buf, v)
	return b
}

// Int64 appends a signed integer as 8 bytes big-endian two's complement.
func (b *Builder) Int64(v int64) *Builder {
	return b.Uint64(uint64(v))
}

// Message returns the bytes built so far. The caller must not modify them.
func (b *Builder) Message() []byte { return b.buf }

// Reader reads the fields of a canonical message in order. After the first
// error every further read returns zero values; check Err (or Done) once at
// the end.
type Reader struct {
	buf []byte
	err error
}

// NewReader returns a Reader over msg.
func NewReader(msg []byte) *Reader { return &Reader{buf: msg} }

// Bytes reads a length-prefixed byte string. The result aliases the message.
func (r *Reader) Bytes() []byte {
	if r.err != nil {
		return nil
	}
	if len(r.buf) < 4 {
		r.err = ErrTruncated
		return nil
	}
	n := binary.BigEndian.Uint32(r.buf)
	if uint64(len(r.buf)-4) < uint64(n) {
		r.err = ErrTruncated
		return nil
	}
	p := r.buf[4 : 4+n]
	r.buf = r.buf[4+n:]
	return p
}

// String reads a length-prefixed string.
func (r *Reader) String() string { return string(r.Bytes()) }

// Uint64 reads an 8-byte big-endian unsigned integer.
func (r *Reader) Uint64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.buf) < 8 {
		r.err = ErrTruncated
		return 0
	}
	v := binary.BigEndian.Uint64(r.buf)
	r.buf = r.buf[8:]
	return v
}

// Int64 reads an 8-byte big-endian signed integer.
func (r *Reader) Int64() int64 { return int64(r.Uint64()) }

// Err returns the first error met, if any.
func (r *Reader) Err() error { return r.err }

// Done returns the first error met, or an error if bytes remain unread.
func (r *Reader) Done() error {
	if r.err != nil {
		return r.err
	}
	if len(r.buf) != 0 {
		return errors.New("canonical message has trailing bytes")
	}
	return nil
}
