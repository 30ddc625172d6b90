package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/vouch-dev/vouch/election/members"
	"github.com/vouch-dev/vouch/guest"
)

// The election function runs on every membership change of every cluster,
// so its codec avoids encoding/json's reflection, which costs several
// hundred microseconds per call in WebAssembly. Inputs with escape sequences
// take the encoding/json path; both paths accept the same documents
// (FuzzDecodeAgrees checks this).

var errSlowPath = errors.New("needs the general decoder")

// decodeInput parses {"cluster": "...", "node_list": ["...", ...]} strictly:
// no other fields, no repeated fields, nothing after the object.
func decodeInput(raw []byte) (*Input, error) {
	in, err := decodeFast(raw)
	if err == errSlowPath {
		return decodeSlow(raw)
	}
	return in, err
}

// decodeSlow decodes with encoding/json's tokenizer, so escapes are
// handled, but keeps the fast path's strictness: exactly the field names
// "cluster" and "node_list" (case matters), each at most once, no null but
// node_list's own, nothing else.
func decodeSlow(raw []byte) (*Input, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("malformed input: %v", err)
	}
	if tok == nil {
		return nil, errors.New("malformed input: null is not allowed; want a JSON object")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("malformed input: want a JSON object")
	}
	var in Input
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("malformed input: %v", err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return nil, fmt.Errorf("malformed input: field %q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "cluster":
			// A null is refused, not read as "" (the default cluster).
			var cluster *string
			if err = dec.Decode(&cluster); err == nil && cluster == nil {
				err = errors.New("null is not allowed")
			} else if err == nil {
				in.Cluster = *cluster
			}
		case "node_list":
			var ids []json.RawMessage
			if err = dec.Decode(&ids); err == nil && ids != nil {
				in.NodeList = make([]string, len(ids))
				for i, id := range ids {
					if in.NodeList[i], err = nodeID(id, i); err != nil {
						if _, ok := err.(*guest.Refusal); ok {
							return nil, err
						}
						break
					}
				}
			}
		default:
			return nil, fmt.Errorf("malformed input: unknown field %q", key)
		}
		if err != nil {
			return nil, fmt.Errorf("malformed input: %s: %v", key, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("malformed input: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("malformed input: trailing data after the JSON object")
	}
	return &in, nil
}

// MaxNumericID is the largest node ID accepted as a JSON number: 2^53, the
// largest integer up to which every integer is exact in a float64, so the
// number means the same in every JSON implementation.
const MaxNumericID = 1 << 53

// nodeID reads one node_list element: a string, or a JSON number that is a
// non-negative integer written without fraction or exponent and at most
// MaxNumericID, which is canonicalized to its decimal string (1 is "1").
func nodeID(raw json.RawMessage, i int) (string, error) {
	if len(raw) == 0 {
		return "", errors.New("empty element")
	}
	switch c := raw[0]; {
	case c == '"':
		var id string
		err := json.Unmarshal(raw, &id)
		return id, err
	case c == 'n':
		return "", errors.New("null is not allowed in the list")
	case c == '-' || c >= '0' && c <= '9':
		refuse := func(why string) error {
			return guest.Refuse(guest.InvalidValue, "node_list[%d]: %s is not a node ID: %s; a node ID is a string, or a non-negative integer without fraction or exponent, at most 2^53 (%d)", i, clipRaw(raw), why, uint64(MaxNumericID))
		}
		if c == '-' {
			return "", refuse("it is negative")
		}
		if bytes.IndexByte(raw, '.') >= 0 {
			return "", refuse("it has a fraction")
		}
		if bytes.ContainsAny(raw, "eE") {
			return "", refuse("it has an exponent")
		}
		n, err := strconv.ParseUint(string(raw), 10, 64)
		if err != nil || n > MaxNumericID {
			return "", refuse("it is larger than 2^53")
		}
		return strconv.FormatUint(n, 10), nil
	}
	return "", guest.Refuse(guest.InvalidValue, "node_list[%d]: %s is not a node ID; a node ID is a string, or a non-negative integer such as 5000", i, clipRaw(raw))
}

// clipRaw shortens a JSON value for an error message.
func clipRaw(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "…"
	}
	return string(raw)
}

type scanner struct {
	b []byte
	// s is b as one string: the strings the scanner returns are slices
	// of it, so that a list of n IDs costs one allocation, not n.
	s string
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return s.errorf("expected %q", c)
	}
	s.i++
	return nil
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("malformed input: "+format+" at offset %d", append(args, s.i)...)
}

// str reads a string without escapes; anything unusual takes the slow path.
func (s *scanner) str() (string, error) {
	if err := s.expect('"'); err != nil {
		return "", err
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.s[start:s.i]
			s.i++
			return v, nil
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", errSlowPath
		}
		s.i++
	}
	return "", s.errorf("unterminated string")
}

func decodeFast(raw []byte) (*Input, error) {
	s := &scanner{b: raw, s: string(raw)}
	if s.peek() == 'n' {
		return nil, errSlowPath // null: let encoding/json decide
	}
	if err := s.expect('{'); err != nil {
		return nil, errSlowPath
	}
	var in Input
	seenCluster, seenList := false, false
	if s.peek() == '}' {
		s.i++
	} else {
		for {
			key, err := s.str()
			if err != nil {
				return nil, errSlowPath
			}
			if err := s.expect(':'); err != nil {
				return nil, errSlowPath
			}
			switch key {
			case "cluster":
				if seenCluster {
					return nil, errSlowPath
				}
				seenCluster = true
				if in.Cluster, err = s.str(); err != nil {
					return nil, errSlowPath
				}
			case "node_list":
				if seenList {
					return nil, errSlowPath
				}
				seenList = true
				if s.peek() != '[' {
					return nil, errSlowPath
				}
				s.i++
				// One allocation for the whole list: there are at
				// most as many IDs as commas after '[', plus one
				// (bounded: a longer list is refused anyway).
				in.NodeList = make([]string, 0, min(bytes.Count(s.b[s.i:], []byte{','}), members.MaxMembers)+1)
				if s.peek() == ']' {
					s.i++
				} else {
					for {
						id, err := s.str()
						if err != nil {
							return nil, errSlowPath
						}
						in.NodeList = append(in.NodeList, id)
						if s.peek() == ',' {
							s.i++
							continue
						}
						if err := s.expect(']'); err != nil {
							return nil, errSlowPath
						}
						break
					}
				}
			default:
				return nil, errSlowPath
			}
			if s.peek() == ',' {
				s.i++
				continue
			}
			if err := s.expect('}'); err != nil {
				return nil, errSlowPath
			}
			break
		}
	}
	s.ws()
	if s.i != len(s.b) {
		return nil, errSlowPath
	}
	return &in, nil
}

// encodeOutput writes the output object. Member IDs and cluster names are
// printable ASCII, validated before this runs, so only " and \ need
// escaping.
func encodeOutput(o *Output) []byte {
	n := 96 + len(o.Cluster) + len(o.Leader)
	for _, m := range o.Members {
		n += len(m) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, `{"cluster":`...)
	b = members.AppendQuoted(b, o.Cluster)
	b = append(b, `,"leader":`...)
	b = members.AppendQuoted(b, o.Leader)
	b = append(b, `,"members":[`...)
	for i, m := range o.Members {
		if i > 0 {
			b = append(b, ',')
		}
		b = members.AppendQuoted(b, m)
	}
	b = append(b, `],"members_digest":`...)
	b = members.AppendQuoted(b, o.MembersDigest)
	return append(b, '}')
}
