package main

import (
	"math/bits"
	"unsafe"

	"github.com/vouch-dev/vouch/election/members"
	"github.com/vouch-dev/vouch/guest"
)

// scratch is answer's buffer, kept from call to call of this instance so
// that a call allocates nothing: wasm runs one call at a time, a call
// reads only the bytes it wrote, and the host copies the output before the
// next call. Nothing in it is reused as a result.
var scratch []byte

// answer computes the output for the common input in one pass, without
// allocating: no escapes, a valid cluster name, and a non-empty list of
// valid string IDs already in strictly increasing order. The output is
// valid until the next call. It returns false for anything else, valid or
// not, and handle then takes the general path (decide), which alone
// refuses; the two agree wherever answer succeeds (FuzzAnswerAgrees). In
// wasm every call, allocation and taken branch is dear, so this is one
// function that reads and writes IDs 8 bytes at a time.
func answer(raw []byte) (out []byte, ok bool) {
	const (
		// head holds the header, written last and right-aligned before
		// the members: {"cluster":"<≤64>","leader":"<≤128>","members":[
		head = 12 + 64 + 12 + members.MaxIDLen + 13
		// tail holds what follows the members: ],"members_digest":"<64>"}
		tail = 20 + 64 + 2
	)
	n := len(raw)
	// The members ("a","b") and their digest's preimage (a\nb) each take
	// at most the input's length, and a word more while being written
	// 8 bytes at a time. The input is read from a copy padded with a word
	// of zeros, so that a word read in it never passes its end.
	need := head + n + tail + 8 + n + 8 + n + 8
	if cap(scratch) < need {
		scratch = make([]byte, need)
	}
	buf := scratch[:need]
	w := head
	pre := head + n + tail + 8
	p := pre
	src := buf[pre+n+8 : pre+2*n+16 : pre+2*n+16]
	copy(src, raw)
	store64(src, n, 0)

	i := skipWSBytes(raw, 0)
	if i >= n || raw[i] != '{' {
		return nil, false
	}
	i = skipWSBytes(raw, i+1)
	cs, ce := 0, 0 // the cluster's span in raw
	seenCluster, seenList := false, false
	count := 0
	ls, le := 0, 0 // the last ID's span in raw
	// Set bits say: an ID that is not all digits, one with a leading
	// zero, a pair out of numeric order, out of byte-wise order.
	var nonDigits, zeroLed, notNumInc, notByteInc uint64
	for {
		// A key: a string without escapes.
		if i >= n || raw[i] != '"' {
			return nil, false
		}
		i++
		ks := i
		for i < n && raw[i] != '"' {
			if c := raw[i]; c == '\\' || c < 0x20 || c >= 0x80 {
				return nil, false
			}
			i++
		}
		if i >= n {
			return nil, false
		}
		key := raw[ks:i]
		i = skipWSBytes(raw, i+1)
		if i >= n || raw[i] != ':' {
			return nil, false
		}
		i = skipWSBytes(raw, i+1)
		switch string(key) {
		case "cluster":
			if seenCluster || i >= n || raw[i] != '"' {
				return nil, false
			}
			seenCluster = true
			i++
			cs = i
			for i < n && raw[i] != '"' {
				c := raw[i]
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
					return nil, false
				}
				i++
			}
			if i >= n || i-cs > 64 {
				return nil, false
			}
			ce = i
			i++
		case "node_list":
			if seenList || i >= n || raw[i] != '[' {
				return nil, false
			}
			seenList = true
			i = skipWSBytes(raw, i+1)
			// The common case, an ID under 8 bytes followed by a bare
			// comma, takes no branch but the loop's: in wasm each taken
			// branch is a dispatch through the function's jump table.
			var prev uint64 // the previous ID's bytes, zero-padded, if under 8
			lp := 0         // its length; 0 before the first
			if i >= n || raw[i] != '"' {
				return nil, false // also an empty list
			}
			for {
				s := i + 1 // raw[i] is the ID's opening quote
				// The ID's first word: its bytes are those before the
				// first quote, each printable ASCII but the space and \.
				x := load64(src, s)
				q := zeroBytes(x ^ (ones * '"'))
				mask := (q&-q)>>7 - 1 // the bytes before the quote; all if none
				in := mask & highs
				nonDigits |= nonDigitBytes(x) & in
				l := bits.TrailingZeros64(q) >> 3 // 8 if no quote
				if badBytes(x)&in != 0 || l == 0 {
					return nil, false
				}
				store64(buf, w+1, x)
				store64(buf, p, x)
				cur := x & mask
				if l == 8 {
					// A long ID: the rest of it, a word at a time.
					for {
						x = load64(src, s+l)
						q = zeroBytes(x ^ (ones * '"'))
						in = ((q&-q)>>7 - 1) & highs
						if badBytes(x)&in != 0 {
							return nil, false
						}
						nonDigits |= nonDigitBytes(x) & in
						store64(buf, w+1+l, x)
						store64(buf, p+l, x)
						if q != 0 {
							l += bits.TrailingZeros64(q) >> 3
							break
						}
						if l += 8; l > members.MaxIDLen {
							return nil, false
						}
					}
					if l > members.MaxIDLen {
						return nil, false
					}
				}
				// Compare with the previous ID both ways: byte-wise, and
				// as decimal numbers without leading zeros (shorter is
				// smaller, else byte-wise). less is 1 if the previous
				// is byte-wise smaller.
				var less uint64
				if l < 8 && lp < 8 {
					// Zero padding sorts a prefix first, as no ID byte
					// is zero. Equal words shift by 64 and read 0 twice.
					k := uint(bits.TrailingZeros64(prev^cur)) &^ 7
					less = (uint64(byte(prev>>k)) - uint64(byte(cur>>k))) >> 63
				} else {
					common := min(lp, l)
					lessB := lp < l // when one is a prefix of the other
					for j := 0; j < common; j += 8 {
						a, b := load64(src, ls+j), load64(src, s+j)
						d := a ^ b
						if common-j < 8 {
							d &= 1<<(8*(common-j)) - 1
						}
						if d != 0 {
							k := bits.TrailingZeros64(d) &^ 7
							lessB = byte(a>>k) < byte(b>>k)
							break
						}
					}
					if lessB {
						less = 1
					}
				}
				shorter := (uint64(lp) - uint64(l)) >> 63
				same := ((uint64(lp) ^ uint64(l)) - 1) >> 63
				notByteInc |= less ^ 1
				notNumInc |= (shorter | same&less) ^ 1
				zeroLed |= (uint64(byte(cur)^'0') - 1) >> 63 & ((1 - uint64(l)) >> 63)
				prev, lp = cur, l
				ls, le = s, s+l
				count++
				// Frame the ID and end it with a separator, which the
				// end of the list takes back.
				buf[w] = '"'
				store16(buf, w+1+l, '"'|','<<8)
				w += l + 3
				buf[p+l] = '\n'
				p += l + 1
				i = s + l + 1
				if load64(src, i)&0xffff == ','|'"'<<8 {
					i++
					continue
				}
				i = skipWSBytes(raw, i)
				if i < n && raw[i] == ',' {
					if i = skipWSBytes(raw, i+1); i >= n || raw[i] != '"' {
						return nil, false
					}
					continue
				}
				if i >= n || raw[i] != ']' {
					return nil, false
				}
				i++
				w--
				p--
				break
			}
		default:
			return nil, false
		}
		i = skipWSBytes(raw, i)
		if i < n && raw[i] == ',' {
			i = skipWSBytes(raw, i+1)
			continue
		}
		if i >= n || raw[i] != '}' {
			return nil, false
		}
		i++
		break
	}
	if !seenList || skipWSBytes(raw, i) != n || count > members.MaxMembers {
		return nil, false
	}
	// members.New would sort any other order; answer only the lists it
	// keeps as they are.
	if nonDigits == 0 && zeroLed|notNumInc != 0 || nonDigits != 0 && notByteInc != 0 {
		return nil, false
	}

	sum := guest.SHA256(buf[pre:p])
	w += copy(buf[w:], `],"members_digest":"`)
	const hexDigits = "0123456789abcdef"
	for _, b := range sum {
		buf[w] = hexDigits[b>>4]
		buf[w+1] = hexDigits[b&15]
		w += 2
	}
	buf[w] = '"'
	buf[w+1] = '}'
	end := w + 2

	clusterLen := ce - cs
	if clusterLen == 0 {
		clusterLen = len(members.DefaultCluster)
	}
	start := head - (12 + clusterLen + 12 + (le - ls) + 13)
	h := start
	h += copy(buf[h:], `{"cluster":"`)
	if ce > cs {
		h += copy(buf[h:], raw[cs:ce])
	} else {
		h += copy(buf[h:], members.DefaultCluster)
	}
	h += copy(buf[h:], `","leader":"`)
	h += copy(buf[h:], raw[ls:le])
	copy(buf[h:], `","members":[`)
	return buf[start:end], true
}

// skipWSBytes returns the index of the first byte at or after i that is
// not JSON whitespace.
func skipWSBytes(s []byte, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// Word-at-a-time helpers. Words are little-endian, as in wasm.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// load64 reads the 8 bytes at b[k:k+8]; it panics unless they are in
// cap(b).
func load64(b []byte, k int) uint64 {
	return *(*uint64)(unsafe.Pointer(unsafe.SliceData(b[k : k+8])))
}

// store64 writes v to b[k:k+8]; it panics unless they are in cap(b).
func store64(b []byte, k int, v uint64) {
	*(*uint64)(unsafe.Pointer(unsafe.SliceData(b[k : k+8]))) = v
}

// store16 writes v to b[k:k+2]; it panics unless they are in cap(b).
func store16(b []byte, k int, v uint16) {
	*(*uint16)(unsafe.Pointer(unsafe.SliceData(b[k : k+2]))) = v
}

// badBytes returns the high bit of every byte of x that may not be in a
// member ID: outside printable ASCII, the space, or \. A byte of 0x80 or
// more may change the bits of the bytes after it, which the caller then
// refuses anyway.
func badBytes(x uint64) uint64 {
	return x | ^(x + ones*(0x80-0x21)) | (x + ones*(0x80-0x7f)) | zeroBytes(x^(ones*'\\'))
}

// nonDigitBytes returns the high bit of every byte of x, ASCII, that is
// not a decimal digit.
func nonDigitBytes(x uint64) uint64 {
	return (^(x + ones*(0x80-'0')) | (x + ones*(0x80-'9'-1))) & highs
}

// zeroBytes returns the high bit of every byte of x that is zero.
func zeroBytes(x uint64) uint64 {
	const lows = ^uint64(highs)
	return ^((x&lows + lows) | x | lows)
}
