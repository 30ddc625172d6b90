// Package members holds the rules for member IDs that every part of vouch
// must agree on: which IDs are valid, how they sort, who is "highest", and
// the digest of a member set.
//
// The election function (compiled to WebAssembly) and the nodes that verify
// its certificates both import this package, so the two can never disagree.
//
// Ordering follows the original demo: when every ID is a decimal number
// (ASCII digits only), IDs compare as numbers, otherwise byte-wise. Numbers
// that are equal but spelled differently ("7" and "007") fall back to
// byte-wise order so the order is total.
package members

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Limits on member IDs and sets.
const (
	MaxIDLen   = 128
	MaxMembers = 10000
)

// DefaultCluster is the cluster name used when a request names none.
const DefaultCluster = "default"

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid member list")

// Set is a validated, sorted set of member IDs.
type Set struct {
	ids     []string
	numeric bool
}

// ValidID reports why id is not a valid member ID, or nil. An ID is 1 to 128
// printable ASCII characters without spaces.
func ValidID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty member ID", ErrInvalid)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: member ID %.20q… is longer than %d bytes", ErrInvalid, id, MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= 0x20 || c >= 0x7f {
			return fmt.Errorf("%w: member ID %q has a byte outside printable ASCII at offset %d", ErrInvalid, id, i)
		}
	}
	return nil
}

// ValidCluster reports why name is not a valid cluster name, or nil. A
// cluster name is 1 to 64 of A-Z a-z 0-9 . _ -.
func ValidCluster(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("invalid cluster name %q: want 1-64 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("invalid cluster name %q: only A-Z a-z 0-9 . _ - are allowed", name)
		}
	}
	return nil
}

// New validates ids and returns them as a sorted set. It fails on an empty
// list, an invalid ID or a duplicate.
func New(ids []string) (*Set, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: node_list is empty; an election needs at least one member", ErrInvalid)
	}
	if len(ids) > MaxMembers {
		return nil, fmt.Errorf("%w: %d members, more than the limit of %d", ErrInvalid, len(ids), MaxMembers)
	}
	s := &Set{ids: slices.Clone(ids), numeric: true}
	// The loops below call no function on the common path: the election
	// functions run this compiled to wasm, where calls are dear.
	for _, id := range s.ids {
		if len(id) == 0 || len(id) > MaxIDLen {
			return nil, ValidID(id)
		}
		for i := 0; i < len(id); i++ {
			c := id[i]
			if c <= 0x20 || c >= 0x7f {
				return nil, ValidID(id)
			}
			if c < '0' || c > '9' {
				s.numeric = false
			}
		}
	}
	// Lists usually arrive in order: one pass proves that they are
	// strictly increasing, so free of duplicates, and only others are
	// sorted.
	if !s.increasing() {
		cmp := strings.Compare
		if s.numeric {
			cmp = compareNumbers
		}
		slices.SortFunc(s.ids, cmp)
		for i := 1; i < len(s.ids); i++ {
			if s.ids[i] == s.ids[i-1] {
				return nil, fmt.Errorf("%w: duplicate member ID %q", ErrInvalid, s.ids[i])
			}
		}
	}
	return s, nil
}

// increasing reports whether s.ids is strictly increasing in s's order.
func (s *Set) increasing() bool {
	ids := s.ids
	if !s.numeric {
		for i := 1; i < len(ids); i++ {
			if ids[i-1] >= ids[i] {
				return false
			}
		}
		return true
	}
	for i := 1; i < len(ids); i++ {
		a, b := ids[i-1], ids[i]
		if a[0] == '0' || b[0] == '0' { // leading zeros: the general rule
			if compareNumbers(a, b) >= 0 {
				return false
			}
			continue
		}
		if len(a) > len(b) || len(a) == len(b) && a >= b {
			return false
		}
	}
	return true
}

// IDs returns the members in order. The caller must not modify the slice.
func (s *Set) IDs() []string { return s.ids }

// Len returns the number of members.
func (s *Set) Len() int { return len(s.ids) }

// Numeric reports whether every ID is a decimal number.
func (s *Set) Numeric() bool { return s.numeric }

// Highest returns the member that wins under the original policy.
func (s *Set) Highest() string { return s.ids[len(s.ids)-1] }

// Lowest returns the first member in order.
func (s *Set) Lowest() string { return s.ids[0] }

// Contains reports whether id is a member.
func (s *Set) Contains(id string) bool {
	_, ok := slices.BinarySearchFunc(s.ids, id, s.compare)
	return ok
}

// Digest returns the members digest: the lowercase hex SHA-256 of the sorted
// IDs joined by "\n" (no trailing newline).
func (s *Set) Digest() string { return Digest(s.ids) }

// Digest returns the members digest of IDs that are already in order.
func Digest(sorted []string) string {
	sum := sha256.Sum256(Preimage(sorted))
	return hex.EncodeToString(sum[:])
}

// Preimage returns what the members digest hashes: the IDs, already in
// order, joined by "\n". A guest hashes it with the host's SHA-256.
func Preimage(sorted []string) []byte {
	n := len(sorted)
	for _, id := range sorted {
		n += len(id)
	}
	buf := make([]byte, 0, n)
	for i, id := range sorted {
		if i > 0 {
			buf = append(buf, '\n')
		}
		buf = append(buf, id...)
	}
	return buf
}

// Equal reports whether two sets hold the same IDs.
func (s *Set) Equal(o *Set) bool { return slices.Equal(s.ids, o.ids) }

func (s *Set) compare(a, b string) int {
	if s.numeric {
		return compareNumbers(a, b)
	}
	return strings.Compare(a, b)
}

// compareNumbers orders decimal strings by value, and equal values spelled
// differently ("7" and "007") byte-wise, so that the order is total.
func compareNumbers(a, b string) int {
	if c := CompareNumeric(a, b); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// CompareNumeric compares two decimal strings by value.
func CompareNumeric(a, b string) int {
	if len(a) > 0 && a[0] == '0' || len(b) > 0 && b[0] == '0' {
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	}
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// AppendQuoted appends s as a JSON string. It is for member IDs and cluster
// names, which are printable ASCII, so only " and \ need escaping; the
// result is the same bytes in every implementation (docs/FORMATS.md).
func AppendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b = append(b, s[start:i]...)
			b = append(b, '\\')
			start = i
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
