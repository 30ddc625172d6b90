//go:build !wasip1

package strictjson

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// options are json/v2's defaults (duplicate names refused, names matched
// case-sensitively, invalid UTF-8 refused) plus unknown members refused
// and the null check.
var options = json.JoinOptions(
	json.RejectUnknownMembers(true),
	json.WithUnmarshalers(json.UnmarshalFromFunc(refuseNull)),
)

// refuseNull runs before every value is decoded: it refuses a null for a
// type that has none and otherwise lets the default decoding proceed.
func refuseNull(dec *jsontext.Decoder, v any) error {
	if dec.PeekKind() != 'n' {
		return errors.ErrUnsupported
	}
	switch t := reflect.TypeOf(v).Elem(); t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return errors.ErrUnsupported
	default:
		return nullFor(t)
	}
}

// Unmarshal decodes data into v (a non-nil pointer), refusing unknown or
// case-variant member names, duplicate names, null where v's type has no
// null, invalid UTF-8 and trailing data.
func Unmarshal(data []byte, v any) error { return unmarshalV2(data, v) }

// unmarshalV2 is Unmarshal with json/v2.
func unmarshalV2(data []byte, v any) error {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	if err := json.UnmarshalDecode(dec, v, options); err != nil {
		return describe(err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return ErrTrailing
	}
	return nil
}

// describe rewrites json/v2's errors in vouch's words: what is wrong and
// where, as a dotted path of member names ("limits.timeout").
func describe(err error) error {
	var se *json.SemanticError
	if errors.As(err, &se) {
		at := where(se.JSONPointer)
		switch {
		case errors.Is(se.Err, json.ErrUnknownName):
			if parent := where(se.JSONPointer.Parent()); parent != "" {
				return fmt.Errorf("unknown field %q in %q", se.JSONPointer.LastToken(), parent)
			}
			return fmt.Errorf("unknown field %q", se.JSONPointer.LastToken())
		case errors.Is(se.Err, ErrNull):
			if at == "" {
				return se.Err
			}
			return fmt.Errorf("%s: %w", at, se.Err)
		}
		what := "a value"
		if se.GoType != nil {
			what = se.GoType.String()
		}
		msg := fmt.Sprintf("cannot unmarshal %s into %s", kindWord(se.JSONKind), what)
		if at != "" {
			msg = at + ": " + msg
		}
		if se.Err != nil {
			return fmt.Errorf("%s: %w", msg, se.Err)
		}
		return errors.New(msg)
	}
	var xe *jsontext.SyntacticError
	if errors.As(err, &xe) {
		if errors.Is(xe.Err, jsontext.ErrDuplicateName) {
			if parent := where(xe.JSONPointer.Parent()); parent != "" {
				return fmt.Errorf("field %q given twice in %q", xe.JSONPointer.LastToken(), parent)
			}
			return fmt.Errorf("field %q given twice", xe.JSONPointer.LastToken())
		}
		return fmt.Errorf("invalid JSON at byte %d: %w", xe.ByteOffset, xe.Err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errors.New("invalid JSON: unexpected end of data")
	}
	return err
}

// where turns a JSON Pointer into a dotted path; "" for the whole value.
func where(p jsontext.Pointer) string {
	var b []byte
	for tok := range p.Tokens() {
		if len(b) > 0 {
			b = append(b, '.')
		}
		b = append(b, tok...)
	}
	return string(b)
}

func kindWord(k jsontext.Kind) string {
	switch k {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 0:
		return "value"
	}
	return k.String()
}
