package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
)

// unmarshalCompact applies the same rules as the json/v2 path with
// encoding/json alone: a check walks the document beside v's type, then
// encoding/json decodes it. Guest functions are built with it (see
// guest.go), since json/v2 would add 1.4 MB to a function's module and
// time to every call.
func unmarshalCompact(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("cannot unmarshal into %T: want a non-nil pointer", v)
	}
	c := checker{b: data}
	c.i = c.space(0)
	if err := c.value(rv.Type().Elem(), "", 0); err != nil {
		return err
	}
	if c.space(c.i) != len(data) {
		return ErrTrailing
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("%s: cannot unmarshal %s into %s", te.Field, te.Value, te.Type)
		}
		return err
	}
	return nil
}

// maxDepth bounds nesting, as json/v2 does.
const maxDepth = 10000

var errSyntax = errors.New("invalid JSON")

// checker walks one JSON document and the Go type it is decoded into.
type checker struct {
	b []byte
	i int
}

func (c *checker) space(i int) int {
	for i < len(c.b) && (c.b[i] == ' ' || c.b[i] == '\t' || c.b[i] == '\n' || c.b[i] == '\r') {
		i++
	}
	return i
}

func (c *checker) fail(err error) error {
	return fmt.Errorf("invalid JSON at byte %d: %w", c.i, err)
}

func at(path, msg string) error {
	if path == "" {
		return errors.New(msg)
	}
	return errors.New(path + ": " + msg)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// value checks the value at c.i, to be decoded into t (nil: anything),
// and leaves c.i just past it.
func (c *checker) value(t reflect.Type, path string, depth int) error {
	if depth > maxDepth {
		return c.fail(errors.New("nested too deep"))
	}
	if c.i >= len(c.b) {
		return errors.New("invalid JSON: unexpected end of data")
	}
	if t != nil && reflect.PointerTo(t).Implements(reflect.TypeFor[legacyUnmarshaler]()) {
		if c.b[c.i] == 'n' && !nullable(t) {
			return nullError(path, t)
		}
		t = nil // it decodes itself: check the syntax only
	}
	for t != nil && t.Kind() == reflect.Pointer && c.b[c.i] != 'n' {
		t = t.Elem()
	}
	switch ch := c.b[c.i]; {
	case ch == 'n':
		if t != nil && !nullable(t) {
			return nullError(path, t)
		}
		return c.literal("null")
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == '"':
		_, err := c.str()
		return err
	case ch == '-' || ch >= '0' && ch <= '9':
		return c.number()
	case ch == '{':
		return c.object(t, path, depth)
	case ch == '[':
		return c.array(t, path, depth)
	}
	return c.fail(errSyntax)
}

func nullError(path string, t reflect.Type) error {
	err := nullFor(t)
	if path == "" {
		return err
	}
	return fmt.Errorf("%s: %w", path, err)
}

func nullable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return true
	}
	return false
}

func (c *checker) literal(lit string) error {
	if !bytes.HasPrefix(c.b[c.i:], []byte(lit)) {
		return c.fail(errSyntax)
	}
	c.i += len(lit)
	return nil
}

func (c *checker) object(t reflect.Type, path string, depth int) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields = structFields(t)
		case reflect.Map:
			elem = t.Elem()
		case reflect.Interface:
		default:
			return at(path, "cannot unmarshal object into "+t.String())
		}
	}
	seen := map[string]bool{}
	c.i = c.space(c.i + 1)
	if c.i < len(c.b) && c.b[c.i] == '}' {
		c.i++
		return nil
	}
	for {
		if c.i >= len(c.b) || c.b[c.i] != '"' {
			return c.fail(errSyntax)
		}
		name, err := c.str()
		if err != nil {
			return err
		}
		if seen[name] {
			if path == "" {
				return fmt.Errorf("field %q given twice", name)
			}
			return fmt.Errorf("field %q given twice in %q", name, path)
		}
		seen[name] = true
		vt := elem
		if fields != nil {
			ft, ok := fields[name]
			if !ok {
				if path == "" {
					return fmt.Errorf("unknown field %q", name)
				}
				return fmt.Errorf("unknown field %q in %q", name, path)
			}
			vt = ft
		}
		if c.i = c.space(c.i); c.i >= len(c.b) || c.b[c.i] != ':' {
			return c.fail(errSyntax)
		}
		c.i = c.space(c.i + 1)
		if err := c.value(vt, join(path, name), depth+1); err != nil {
			return err
		}
		switch c.i = c.space(c.i); {
		case c.i < len(c.b) && c.b[c.i] == ',':
			c.i = c.space(c.i + 1)
		case c.i < len(c.b) && c.b[c.i] == '}':
			c.i++
			return nil
		default:
			return c.fail(errSyntax)
		}
	}
}

func (c *checker) array(t reflect.Type, path string, depth int) error {
	var elem reflect.Type
	limit := -1
	if t != nil {
		switch t.Kind() {
		case reflect.Slice:
			elem = t.Elem()
			if elem.Kind() == reflect.Uint8 {
				return at(path, "cannot unmarshal array into "+t.String())
			}
		case reflect.Array:
			elem, limit = t.Elem(), t.Len()
		case reflect.Interface:
		default:
			return at(path, "cannot unmarshal array into "+t.String())
		}
	}
	c.i = c.space(c.i + 1)
	if c.i < len(c.b) && c.b[c.i] == ']' {
		c.i++
		if limit > 0 {
			return at(path, "too few array elements")
		}
		return nil
	}
	for n := 0; ; n++ {
		if n == limit {
			return at(path, "too many array elements")
		}
		if err := c.value(elem, join(path, fmt.Sprint(n)), depth+1); err != nil {
			return err
		}
		switch c.i = c.space(c.i); {
		case c.i < len(c.b) && c.b[c.i] == ',':
			c.i = c.space(c.i + 1)
		case c.i < len(c.b) && c.b[c.i] == ']':
			c.i++
			if limit >= 0 && n+1 < limit {
				return at(path, "too few array elements")
			}
			return nil
		default:
			return c.fail(errSyntax)
		}
	}
}

// str reads the string at c.i and returns it unescaped. It refuses what
// json/v2 refuses: invalid UTF-8 and an unpaired surrogate escape.
func (c *checker) str() (string, error) {
	start := c.i
	escaped := false
	for c.i++; c.i < len(c.b); c.i++ {
		switch ch := c.b[c.i]; {
		case ch == '"':
			c.i++
			raw := c.b[start:c.i]
			if !utf8.Valid(raw) {
				return "", c.fail(errors.New("invalid UTF-8"))
			}
			if !escaped {
				return string(raw[1 : len(raw)-1]), nil
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", c.fail(errSyntax)
			}
			return s, nil
		case ch < 0x20:
			return "", c.fail(errSyntax)
		case ch == '\\':
			escaped = true
			if c.i++; c.i >= len(c.b) {
				return "", c.fail(errSyntax)
			}
			switch c.b[c.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				r, ok := c.hex4(c.i + 1)
				if !ok {
					return "", c.fail(errSyntax)
				}
				c.i += 4
				if r >= 0xdc00 && r < 0xe000 {
					return "", c.fail(errors.New("unpaired surrogate escape"))
				}
				if r >= 0xd800 && r < 0xdc00 {
					lo, ok := c.hex4(c.i + 3)
					if !ok || c.i+2 >= len(c.b) || c.b[c.i+1] != '\\' || c.b[c.i+2] != 'u' || lo < 0xdc00 || lo >= 0xe000 {
						return "", c.fail(errors.New("unpaired surrogate escape"))
					}
					c.i += 6
				}
			default:
				return "", c.fail(errSyntax)
			}
		}
	}
	return "", c.fail(errors.New("unexpected end of data"))
}

func (c *checker) hex4(i int) (rune, bool) {
	if i+4 > len(c.b) {
		return 0, false
	}
	var r rune
	for _, h := range c.b[i : i+4] {
		switch {
		case h >= '0' && h <= '9':
			r = r<<4 | rune(h-'0')
		case h >= 'a' && h <= 'f':
			r = r<<4 | rune(h-'a'+10)
		case h >= 'A' && h <= 'F':
			r = r<<4 | rune(h-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (c *checker) number() error {
	digits := func() bool {
		start := c.i
		for c.i < len(c.b) && c.b[c.i] >= '0' && c.b[c.i] <= '9' {
			c.i++
		}
		return c.i > start
	}
	if c.b[c.i] == '-' {
		c.i++
	}
	if c.i < len(c.b) && c.b[c.i] == '0' {
		c.i++
	} else if !digits() {
		return c.fail(errSyntax)
	}
	if c.i < len(c.b) && c.b[c.i] == '.' {
		c.i++
		if !digits() {
			return c.fail(errSyntax)
		}
	}
	if c.i < len(c.b) && (c.b[c.i] == 'e' || c.b[c.i] == 'E') {
		c.i++
		if c.i < len(c.b) && (c.b[c.i] == '+' || c.b[c.i] == '-') {
			c.i++
		}
		if !digits() {
			return c.fail(errSyntax)
		}
	}
	return nil
}

// fieldCache maps a struct type to its members' exact names and types.
var fieldCache sync.Map

// structFields lists the members encoding/json gives struct type t: the
// tag's name or else the Go name, embedded structs' members promoted.
func structFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	addFields(m, t)
	fieldCache.Store(t, m)
	return m
}

func addFields(m map[string]reflect.Type, t reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(m, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
}
