package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
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
	if err := c.value(infoOf(rv.Type().Elem()), 0); err != nil {
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
	// path is where the walk is, for errors: member names, or array
	// indexes where name is "".
	path []step
}

type step struct {
	name  string
	index int
}

// where is the dotted path of the value being checked ("" at the top).
func (c *checker) where() string {
	var b strings.Builder
	for i, s := range c.path {
		if i > 0 {
			b.WriteByte('.')
		}
		if s.name != "" {
			b.WriteString(s.name)
		} else {
			b.WriteString(strconv.Itoa(s.index))
		}
	}
	return b.String()
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

func (c *checker) at(msg string) error {
	if path := c.where(); path != "" {
		return errors.New(path + ": " + msg)
	}
	return errors.New(msg)
}

// typeInfo is what the check needs of a Go type, worked out once.
type typeInfo struct {
	t        reflect.Type
	custom   bool // it has UnmarshalJSON: only the syntax is checked
	isTime   bool // time.Time: also json/v2's stricter RFC 3339 rules
	nullable bool
	kind     reflect.Kind
	elem     *typeInfo            // pointer, slice, array or map values
	length   int                  // array length
	fields   map[string]*typeInfo // struct members by exact name
}

var (
	infoMu sync.Mutex
	infos  = map[reflect.Type]*typeInfo{}
)

// infoOf returns t's typeInfo; nil for a nil type (anything goes).
func infoOf(t reflect.Type) *typeInfo {
	if t == nil {
		return nil
	}
	infoMu.Lock()
	defer infoMu.Unlock()
	return buildInfo(t)
}

// buildInfo is infoOf with infoMu held.
func buildInfo(t reflect.Type) *typeInfo {
	if ti, ok := infos[t]; ok {
		return ti
	}
	ti := &typeInfo{t: t, kind: t.Kind(), nullable: nullable(t)}
	infos[t] = ti // before its parts, so that a recursive type finds itself
	ti.custom = reflect.PointerTo(t).Implements(reflect.TypeFor[legacyUnmarshaler]())
	ti.isTime = t == reflect.TypeFor[time.Time]()
	switch ti.kind {
	case reflect.Pointer, reflect.Slice, reflect.Map:
		ti.elem = buildInfo(t.Elem())
	case reflect.Array:
		ti.elem, ti.length = buildInfo(t.Elem()), t.Len()
	case reflect.Struct:
		ti.fields = map[string]*typeInfo{}
		addFields(ti.fields, t)
	}
	return ti
}

// value checks the value at c.i, to be decoded into ti (nil: anything),
// and leaves c.i just past it.
func (c *checker) value(ti *typeInfo, depth int) error {
	if depth > maxDepth {
		return c.fail(errors.New("nested too deep"))
	}
	if c.i >= len(c.b) {
		return errors.New("invalid JSON: unexpected end of data")
	}
	if ti != nil && ti.isTime && c.b[c.i] == '"' {
		s, err := c.str(true)
		if err == nil && !strictRFC3339(s) {
			return c.at(fmt.Sprintf("time %q is not RFC 3339", s))
		}
		return err
	}
	if ti != nil && ti.custom {
		if c.b[c.i] == 'n' && !ti.nullable {
			return c.nullError(ti.t)
		}
		ti = nil // it decodes itself: check the syntax only
	}
	for ti != nil && ti.kind == reflect.Pointer && c.b[c.i] != 'n' {
		ti = ti.elem
	}
	switch ch := c.b[c.i]; {
	case ch == 'n':
		if ti != nil && !ti.nullable {
			return c.nullError(ti.t)
		}
		return c.literal("null")
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == '"':
		if ti != nil && ti.kind == reflect.Slice && ti.elem.kind == reflect.Uint8 && !ti.elem.custom {
			// encoding/json's base64 skips \r and \n; json/v2 refuses them.
			s, err := c.str(true)
			if err == nil && strings.ContainsAny(s, "\r\n") {
				return c.at("illegal character in base64 data")
			}
			return err
		}
		_, err := c.str(false)
		return err
	case ch == '-' || ch >= '0' && ch <= '9':
		return c.number()
	case ch == '{':
		return c.object(ti, depth)
	case ch == '[':
		return c.array(ti, depth)
	}
	return c.fail(errSyntax)
}

// strictRFC3339 applies the checks json/v2 adds to time.Time's own
// parsing: a two-digit hour, a period before fractional seconds, and a
// time zone offset within 23:59. Whatever else is wrong, time.Time's
// UnmarshalJSON refuses.
func strictRFC3339(s string) bool {
	two := func(i int) int {
		if i < 0 || i+2 > len(s) || s[i] < '0' || s[i] > '9' || s[i+1] < '0' || s[i+1] > '9' {
			return 0
		}
		return int(s[i]-'0')*10 + int(s[i+1]-'0')
	}
	switch {
	case len(s) > 12 && s[12] == ':':
		return false
	case len(s) > 19 && s[19] == ',':
		return false
	case len(s) > 0 && s[len(s)-1] != 'Z' && (two(len(s)-5) >= 24 || two(len(s)-2) >= 60):
		return false
	}
	return true
}

func (c *checker) nullError(t reflect.Type) error {
	err := nullFor(t)
	if path := c.where(); path != "" {
		return fmt.Errorf("%s: %w", path, err)
	}
	return err
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

func (c *checker) object(ti *typeInfo, depth int) error {
	var fields map[string]*typeInfo
	var elem *typeInfo
	if ti != nil {
		switch ti.kind {
		case reflect.Struct:
			fields = ti.fields
		case reflect.Map:
			elem = ti.elem
		case reflect.Interface:
		default:
			return c.at("cannot unmarshal object into " + ti.t.String())
		}
	}
	parent := c.where()
	seen := map[string]bool{}
	c.i = c.space(c.i + 1)
	if c.i < len(c.b) && c.b[c.i] == '}' {
		c.i++
		return nil
	}
	c.path = append(c.path, step{})
	defer func() { c.path = c.path[:len(c.path)-1] }()
	for {
		if c.i >= len(c.b) || c.b[c.i] != '"' {
			return c.fail(errSyntax)
		}
		name, err := c.str(true)
		if err != nil {
			return err
		}
		if seen[name] {
			if parent == "" {
				return fmt.Errorf("field %q given twice", name)
			}
			return fmt.Errorf("field %q given twice in %q", name, parent)
		}
		seen[name] = true
		vt := elem
		if fields != nil {
			ft, ok := fields[name]
			if !ok {
				if parent == "" {
					return fmt.Errorf("unknown field %q", name)
				}
				return fmt.Errorf("unknown field %q in %q", name, parent)
			}
			vt = ft
		}
		if c.i = c.space(c.i); c.i >= len(c.b) || c.b[c.i] != ':' {
			return c.fail(errSyntax)
		}
		c.i = c.space(c.i + 1)
		c.path[len(c.path)-1] = step{name: name}
		if err := c.value(vt, depth+1); err != nil {
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

func (c *checker) array(ti *typeInfo, depth int) error {
	var elem *typeInfo
	limit := -1
	if ti != nil {
		switch ti.kind {
		case reflect.Slice:
			elem = ti.elem
			if elem.kind == reflect.Uint8 && !elem.custom {
				return c.at("cannot unmarshal array into " + ti.t.String())
			}
		case reflect.Array:
			elem, limit = ti.elem, ti.length
		case reflect.Interface:
		default:
			return c.at("cannot unmarshal array into " + ti.t.String())
		}
	}
	c.i = c.space(c.i + 1)
	if c.i < len(c.b) && c.b[c.i] == ']' {
		c.i++
		if limit > 0 {
			return c.at("too few array elements")
		}
		return nil
	}
	c.path = append(c.path, step{})
	defer func() { c.path = c.path[:len(c.path)-1] }()
	for n := 0; ; n++ {
		if n == limit {
			c.path = c.path[:len(c.path)-1]
			err := c.at("too many array elements")
			c.path = append(c.path, step{})
			return err
		}
		c.path[len(c.path)-1] = step{index: n}
		if err := c.value(elem, depth+1); err != nil {
			return err
		}
		switch c.i = c.space(c.i); {
		case c.i < len(c.b) && c.b[c.i] == ',':
			c.i = c.space(c.i + 1)
		case c.i < len(c.b) && c.b[c.i] == ']':
			c.i++
			if limit >= 0 && n+1 < limit {
				c.path = c.path[:len(c.path)-1]
				err := c.at("too few array elements")
				c.path = append(c.path, step{})
				return err
			}
			return nil
		default:
			return c.fail(errSyntax)
		}
	}
}

// str reads the string at c.i and, if name, returns it unescaped. It
// refuses what json/v2 refuses: invalid UTF-8 and an unpaired surrogate
// escape.
func (c *checker) str(name bool) (string, error) {
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
			if !name {
				return "", nil
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

// addFields adds the members encoding/json gives struct type t: the tag's
// name or else the Go name, embedded structs' members promoted.
func addFields(m map[string]*typeInfo, t reflect.Type) {
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
		m[name] = buildInfo(f.Type)
	}
}
