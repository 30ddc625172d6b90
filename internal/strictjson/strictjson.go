// Package strictjson decodes JSON the way vouch reads every document it did
// not produce: one value, no unknown fields, nothing after it.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
)

// ErrTrailing reports data after the JSON value.
var ErrTrailing = errors.New("trailing data after the JSON value")

// Unmarshal decodes data into v, refusing unknown fields and trailing data.
func Unmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	// More reports false before a stray '}' or ']', so look at the bytes.
	if len(bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n")) != 0 {
		return ErrTrailing
	}
	return nil
}
