package main

import (
	"math/bits"
	"unsafe"

	"github.com/vouch-dev/vouch/election/members"
	"github.com/vouch-dev/vouch/guest"
)

// answer computes the output for the common input in one pass and one
// allocation: no escapes, a valid cluster name, and a non-empty list of
// valid string IDs already in strictly increasing order. It returns false
// for anything else, valid or not, and handle then takes the general path
// (decide), which alone refuses; the two agree wherever answer succeeds
// (FuzzAnswerAgrees). In wasm every call and allocation is dear, so this is
// one function with inlined loops that copy bytes one at a time.
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
	buf := make([]byte, head+n+tail+8+n+8+n+8)
	w := head
	pre := head + n + tail + 8
	p := pre
	src := buf[pre+n+8:]
	copy(src, raw)

	i := skipWSBytes(raw, 0)
	if i >= n || raw[i] != '{' {
		return nil, false
	}
	i = skipWSBytes(raw, i+1)
	cs, ce := 0, 0 // the cluster's span in raw
	seenCluster, seenList := false, false
	count := 0
	ls, le := 0, 0 // the last ID's span in raw
	allDigits, zeroLed, numInc, byteInc := true, false, true, true
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
			for {
				if i >= n || raw[i] != '"' {
					return nil, false // also an empty list
				}
				i++
				s := i
				// The ID, 8 bytes at a time: up to its closing quote,
				// every byte printable ASCII but the space and \.
				l := 0
				for {
					x := load64(src, s+l)
					q := zeroBytes(x ^ (ones * '"'))
					in := uint64(highs) // the ID's bytes in x, as high bits
					if q != 0 {
						in = ((q&-q)>>7 - 1) & highs
					}
					bad := x | ^(x + ones*(0x80-0x21)) | (x + ones*(0x80-0x7f)) | zeroBytes(x^(ones*'\\'))
					if bad&in != 0 {
						return nil, false
					}
					if (^(x+ones*(0x80-'0'))|(x+ones*(0x80-'9'-1)))&in != 0 {
						allDigits = false
					}
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
				e := s + l
				i = e + 1
				if l == 0 || l > members.MaxIDLen || count == members.MaxMembers {
					return nil, false
				}
				if l > 1 && raw[s] == '0' {
					zeroLed = true
				}
				if count > 0 {
					// Compare with the previous ID both ways: byte-wise,
					// and as decimal numbers without leading zeros
					// (shorter is smaller, else byte-wise).
					lp := le - ls
					common := min(lp, l)
					less := lp < l // when one is a prefix of the other
					for j := 0; j < common; j += 8 {
						a, b := load64(src, ls+j), load64(src, s+j)
						d := a ^ b
						if common-j < 8 {
							d &= 1<<(8*(common-j)) - 1
						}
						if d != 0 {
							k := bits.TrailingZeros64(d) &^ 7
							less = byte(a>>k) < byte(b>>k)
							break
						}
					}
					byteInc = byteInc && less
					numInc = numInc && (lp < l || lp == l && less)
				}
				// The ID's bytes are in place; frame them.
				buf[w] = '"'
				w += 1 + l
				buf[w] = '"'
				w++
				p += l
				count++
				ls, le = s, e
				i = skipWSBytes(raw, i)
				if i < n && raw[i] == ',' {
					buf[w] = ','
					w++
					buf[p] = '\n'
					p++
					i = skipWSBytes(raw, i+1)
					continue
				}
				if i >= n || raw[i] != ']' {
					return nil, false
				}
				i++
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
	if !seenList || skipWSBytes(raw, i) != n {
		return nil, false
	}
	// members.New would sort any other order; answer only the lists it
	// keeps as they are.
	if allDigits && (zeroLed || !numInc) || !allDigits && !byteInc {
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

// load64 reads the 8 bytes at b[k:k+8]; it panics unless they are in b.
func load64(b []byte, k int) uint64 {
	_ = b[k+7]
	return *(*uint64)(unsafe.Pointer(&b[k]))
}

// store64 writes v to b[k:k+8]; it panics unless they are in b.
func store64(b []byte, k int, v uint64) {
	_ = b[k+7]
	*(*uint64)(unsafe.Pointer(&b[k])) = v
}

// zeroBytes returns the high bit of every byte of x that is zero.
func zeroBytes(x uint64) uint64 {
	const lows = ^uint64(highs)
	return ^((x&lows + lows) | x | lows)
}
