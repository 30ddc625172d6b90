// Package readall reads a body whose length is announced into one buffer
// of that length, instead of growing one as io.ReadAll does. Runs are
// small and many, so the saved allocations show in `vouch-bench run`.
package readall

import "io"

// Sized reads r to EOF as io.ReadAll does. When size is positive the
// buffer is allocated once with room for size bytes; a body longer than
// announced is still read whole (the caller bounds r).
func Sized(r io.Reader, size int64) ([]byte, error) {
	if size <= 0 {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, size+1) // +1: the read that sees EOF needs no growth
	for {
		m, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			rest, err := io.ReadAll(r)
			return append(b, rest...), err
		}
	}
}
