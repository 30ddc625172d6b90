package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// A submission may carry a configuration of hundreds of kilobytes that the
// function must not decode before it knows the configuration is worth it
// (docs/ELECTION.md, "Expensive submissions"). encoding/json would scan it
// twice, byte by byte through its state machine; these functions scan it
// once, validating it, and find the few fields the function reads first.

// maxDepth bounds the nesting of a submission: its documents are four
// levels deep.
const maxDepth = 32

var errSyntax = errors.New("invalid JSON")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipValue returns the offset just past the JSON value that starts at
// b[i] (no leading space), or an error if it is not valid JSON (the same
// grammar json.Valid accepts).
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, errSyntax
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return 0, fmt.Errorf("%w: nested more than %d deep", errSyntax, maxDepth)
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, nil
		}
		for {
			var err error
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, errSyntax
				}
				if i, err = skipString(b, i); err != nil {
					return 0, err
				}
				if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
					return 0, errSyntax
				}
				i = skipSpace(b, i+1)
			}
			if i, err = skipValue(b, i, depth+1); err != nil {
				return 0, err
			}
			i = skipSpace(b, i)
			switch {
			case i < len(b) && b[i] == ',':
				i = skipSpace(b, i+1)
			case i < len(b) && b[i] == closer:
				return i + 1, nil
			default:
				return 0, errSyntax
			}
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	}
	return 0, errSyntax
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, errSyntax
	}
	return i + len(lit), nil
}

// skipString skips the string at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c < 0x20:
			return 0, errSyntax
		case c == '\\':
			if i++; i >= len(b) {
				return 0, errSyntax
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 {
					return 0, errSyntax
				}
				for _, h := range b[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return 0, errSyntax
					}
				}
				i += 4
			default:
				return 0, errSyntax
			}
		}
	}
	return 0, errSyntax
}

// skipNumber skips the number at b[i]: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) (int, error) {
	digits := func(i int) (int, bool) {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i, i > start
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	default:
		var ok bool
		if i, ok = digits(i); !ok {
			return 0, errSyntax
		}
	}
	if i < len(b) && b[i] == '.' {
		var ok bool
		if i, ok = digits(i + 1); !ok {
			return 0, errSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		var ok bool
		if i, ok = digits(i); !ok {
			return 0, errSyntax
		}
	}
	return i, nil
}

// fields calls f with the key and the value's bytes of each member of the
// JSON object b, which must be a whole, valid object and nothing else.
// Keys are matched as written: a key with escapes is passed undecoded.
func fields(b []byte, f func(key string, value []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errors.New("not a JSON object")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		if skipSpace(b, i+1) != len(b) {
			return errors.New("data after the JSON object")
		}
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return errSyntax
		}
		end, err := skipString(b, i)
		if err != nil {
			return err
		}
		key := string(b[i+1 : end-1])
		if i = skipSpace(b, end); i >= len(b) || b[i] != ':' {
			return errSyntax
		}
		i = skipSpace(b, i+1)
		if end, err = skipValue(b, i, 1); err != nil {
			return err
		}
		if err := f(key, b[i:end]); err != nil {
			return err
		}
		switch i = skipSpace(b, end); {
		case i < len(b) && b[i] == ',':
			i = skipSpace(b, i+1)
		case i < len(b) && b[i] == '}':
			if skipSpace(b, i+1) != len(b) {
				return errors.New("data after the JSON object")
			}
			return nil
		default:
			return errSyntax
		}
	}
}

// splitInput splits a submission into its configuration (nil if absent or
// null) and its view, both still JSON. Like strictjson it refuses unknown
// fields and trailing data; it also refuses a field given twice.
func splitInput(raw []byte) (config, view []byte, err error) {
	seen := map[string]bool{}
	err = fields(raw, func(key string, v []byte) error {
		if seen[key] {
			return fmt.Errorf("field %q given twice", key)
		}
		seen[key] = true
		switch key {
		case "config":
			if string(v) != "null" {
				config = v
			}
		case "view":
			if string(v) != "null" {
				view = v
			}
		default:
			return fmt.Errorf("unknown field %q", key)
		}
		return nil
	})
	return config, view, err
}

// readHeader reads the cluster, version and owner of a signed
// configuration (JSON) and its signature, skipping everything else.
func readHeader(raw []byte) (*configHeader, error) {
	var h configHeader
	err := fields(raw, func(key string, v []byte) error {
		switch key {
		case "signature":
			return json.Unmarshal(v, &h.Signature)
		case "config":
			return fields(v, func(key string, v []byte) error {
				switch key {
				case "cluster":
					return json.Unmarshal(v, &h.Config.Cluster)
				case "owner":
					return json.Unmarshal(v, &h.Config.Owner)
				case "version":
					n, err := strconv.ParseUint(string(v), 10, 64)
					if err != nil {
						return fmt.Errorf("version %.20s is not a whole number", v)
					}
					h.Config.Version = n
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// viewHeader is what the function reads of a signed view before it
// decodes the whole of it: who it is from and for which cluster.
type viewHeader struct {
	Cluster, Node string
	Key           []byte
}

// readViewHeader reads the cluster, node and key of a signed view (JSON),
// skipping everything else.
func readViewHeader(raw []byte) (*viewHeader, error) {
	var h viewHeader
	err := fields(raw, func(key string, v []byte) error {
		if key != "view" {
			return nil
		}
		return fields(v, func(key string, v []byte) error {
			switch key {
			case "cluster":
				return json.Unmarshal(v, &h.Cluster)
			case "node":
				return json.Unmarshal(v, &h.Node)
			case "key":
				return json.Unmarshal(v, &h.Key)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return &h, nil
}
