// Package strictjson decodes JSON the way vouch reads every document it did
// not produce: exactly one value, every object member known to the Go type
// and named exactly as its tag spells it, no name given twice, no null
// where the Go type has no null, and nothing after the value.
//
// A document that a human reviews and a program reads must mean the same
// to both: encoding/json takes the last of two duplicate keys, matches
// "ALLOW_PLAINTEXT_INPUT" to allow_plaintext_input and decodes null into a
// struct as "nothing", so a reviewer and the runtime could disagree.
package strictjson

import (
	"errors"
	"fmt"
	"reflect"
)

// ErrTrailing reports data after the JSON value.
var ErrTrailing = errors.New("trailing data after the JSON value")

// ErrNull reports a null where the Go type has no null: a struct, string,
// number, boolean or array. Pointers, slices, maps and interfaces may be
// null (encoding/json writes a nil slice as null).
var ErrNull = errors.New("null is not allowed here")

// legacyUnmarshaler is encoding/json's Unmarshaler: a type with one decodes
// itself from a JSON form its kind does not tell.
type legacyUnmarshaler interface{ UnmarshalJSON([]byte) error }

func kindName(t reflect.Type) string {
	if reflect.PointerTo(t).Implements(reflect.TypeFor[legacyUnmarshaler]()) {
		return ""
	}
	switch t.Kind() {
	case reflect.Struct:
		return "JSON object"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Array:
		return "JSON array"
	}
	return "number"
}

// nullFor is the error for a null decoded into t.
func nullFor(t reflect.Type) error {
	if what := kindName(t); what != "" {
		return fmt.Errorf("%w (a %s is due)", ErrNull, what)
	}
	return ErrNull
}
