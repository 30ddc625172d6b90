package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hashicorp/raft"
)

// entryVersion is the first byte of an encoded entry.
const entryVersion = 1

// entryFixed is the size of an encoded entry without its data and
// extensions: version, index, term, type, time flag, seconds, nanoseconds
// and the two lengths.
const entryFixed = 1 + 8 + 8 + 1 + 1 + 8 + 4 + 4 + 4

// errMalformed is wrapped by decoding errors; the store turns them into
// ErrTampered, since only a forger can make a sealed entry that
// authenticates and does not decode.
var errMalformed = errors.New("malformed log entry")

// encodeEntry returns the binary encoding of l described in the package
// documentation.
func encodeEntry(l *raft.Log) ([]byte, error) {
	if uint64(len(l.Data)) > math.MaxUint32 || uint64(len(l.Extensions)) > math.MaxUint32 {
		return nil, fmt.Errorf("log entry %d: data or extensions longer than 4 GiB", l.Index)
	}
	if !l.AppendedAt.IsZero() && time.Unix(l.AppendedAt.Unix(), 0).Unix() != l.AppendedAt.Unix() {
		return nil, fmt.Errorf("log entry %d: AppendedAt %v out of range", l.Index, l.AppendedAt)
	}
	b := make([]byte, 0, entryFixed+len(l.Data)+len(l.Extensions))
	b = append(b, entryVersion)
	b = binary.BigEndian.AppendUint64(b, l.Index)
	b = binary.BigEndian.AppendUint64(b, l.Term)
	b = append(b, byte(l.Type))
	if l.AppendedAt.IsZero() {
		b = append(b, 0)
		b = binary.BigEndian.AppendUint64(b, 0)
		b = binary.BigEndian.AppendUint32(b, 0)
	} else {
		b = append(b, 1)
		b = binary.BigEndian.AppendUint64(b, uint64(l.AppendedAt.Unix()))
		b = binary.BigEndian.AppendUint32(b, uint32(l.AppendedAt.Nanosecond()))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Extensions)))
	b = append(b, l.Extensions...)
	return b, nil
}

// decodeEntry decodes b into l. It accepts only the canonical encoding,
// so encodeEntry(decoded) returns b again, and it never panics. On error l
// is left unchanged. Data and Extensions are fresh copies (nil when
// empty) and AppendedAt is in UTC.
func decodeEntry(b []byte, l *raft.Log) error {
	if len(b) < entryFixed-4 { // the extensions' length is read later
		return fmt.Errorf("%w: %d bytes", errMalformed, len(b))
	}
	if b[0] != entryVersion {
		return fmt.Errorf("%w: version %d", errMalformed, b[0])
	}
	var out raft.Log
	out.Index = binary.BigEndian.Uint64(b[1:])
	out.Term = binary.BigEndian.Uint64(b[9:])
	out.Type = raft.LogType(b[17])
	flag, sec, nsec := b[18], int64(binary.BigEndian.Uint64(b[19:])), binary.BigEndian.Uint32(b[27:])
	switch flag {
	case 0:
		if sec != 0 || nsec != 0 {
			return fmt.Errorf("%w: zero time with a value", errMalformed)
		}
	case 1:
		if nsec >= 1e9 {
			return fmt.Errorf("%w: %d nanoseconds", errMalformed, nsec)
		}
		t := time.Unix(sec, int64(nsec)).UTC()
		if t.Unix() != sec || t.IsZero() {
			return fmt.Errorf("%w: time out of range", errMalformed)
		}
		out.AppendedAt = t
	default:
		return fmt.Errorf("%w: time flag %d", errMalformed, flag)
	}
	rest := b[31:]
	var err error
	if out.Data, rest, err = readBytes(rest, "data"); err != nil {
		return err
	}
	if out.Extensions, rest, err = readBytes(rest, "extensions"); err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errMalformed, len(rest))
	}
	*l = out
	return nil
}

// readBytes reads a 4-byte big-endian length and that many bytes.
func readBytes(b []byte, what string) (v, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("%w: %s length cut short", errMalformed, what)
	}
	n := uint64(binary.BigEndian.Uint32(b))
	b = b[4:]
	if n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("%w: %s of %d bytes, %d left", errMalformed, what, n, len(b))
	}
	if n > 0 {
		v = append([]byte(nil), b[:n]...)
	}
	return v, b[n:], nil
}
