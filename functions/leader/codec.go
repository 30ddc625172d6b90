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

// The fast path below is written as few, small functions that the
// compiler inlines: in WebAssembly every Go call costs a spill of the
// registers to the stack in linear memory, which dominated its cost.

// skipWS returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// plainString reads the string that starts at s[i], a quote, if it has no
// escapes and only printable ASCII or bytes 0x20 and up below 0x80. It
// returns the string and the index after its closing quote; ok is false
// for anything else, which takes the slow path.
func plainString(s string, i int) (v string, next int, ok bool) {
	if i >= len(s) || s[i] != '"' {
		return "", i, false
	}
	i++
	start := i
	for i < len(s) {
		c := s[i]
		if c == '"' {
			return s[start:i], i + 1, true
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return "", i, false
		}
		i++
	}
	return "", i, false
}

// decodeFast decodes documents without escapes, nulls or numbers, and
// returns errSlowPath for anything else, valid or not: only decodeSlow
// reports errors, so the two paths cannot disagree on one.
func decodeFast(raw []byte) (*Input, error) {
	// One copy of the input: the strings returned are slices of it, so
	// that a list of n IDs costs one allocation, not n.
	s := string(raw)
	i := skipWS(s, 0)
	if i >= len(s) || s[i] != '{' {
		return nil, errSlowPath
	}
	i = skipWS(s, i+1)
	var in Input
	seenCluster, seenList := false, false
	if i < len(s) && s[i] == '}' {
		i++
	} else {
		for {
			key, j, ok := plainString(s, i)
			if !ok {
				return nil, errSlowPath
			}
			i = skipWS(s, j)
			if i >= len(s) || s[i] != ':' {
				return nil, errSlowPath
			}
			i = skipWS(s, i+1)
			switch key {
			case "cluster":
				if seenCluster {
					return nil, errSlowPath
				}
				seenCluster = true
				if in.Cluster, i, ok = plainString(s, i); !ok {
					return nil, errSlowPath
				}
			case "node_list":
				if seenList {
					return nil, errSlowPath
				}
				seenList = true
				if i >= len(s) || s[i] != '[' {
					return nil, errSlowPath
				}
				// One allocation for the whole list: each ID takes
				// at least 4 bytes with its quotes and comma
				// (bounded: a longer list is refused anyway).
				in.NodeList = make([]string, 0, min((len(s)-i)/4, members.MaxMembers)+1)
				i = skipWS(s, i+1)
				if i < len(s) && s[i] == ']' {
					i++
					break
				}
				for {
					id, j, ok := plainString(s, i)
					if !ok {
						return nil, errSlowPath
					}
					in.NodeList = append(in.NodeList, id)
					i = skipWS(s, j)
					if i < len(s) && s[i] == ',' {
						i = skipWS(s, i+1)
						continue
					}
					if i >= len(s) || s[i] != ']' {
						return nil, errSlowPath
					}
					i++
					break
				}
			default:
				return nil, errSlowPath
			}
			i = skipWS(s, i)
			if i < len(s) && s[i] == ',' {
				i = skipWS(s, i+1)
				continue
			}
			if i >= len(s) || s[i] != '}' {
				return nil, errSlowPath
			}
			i++
			break
		}
	}
	if skipWS(s, i) != len(s) {
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
