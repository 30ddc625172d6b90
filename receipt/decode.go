package receipt

import (
	"fmt"
	"github.com/vouch-dev/vouch/internal/strictjson"
)

// MaxJSON bounds the size of a receipt or statement in JSON.
const MaxJSON = 4 << 10

// ParseReceipt decodes a receipt from JSON strictly (no unknown fields, no
// trailing data) and checks its form. It does not check the signature.
func ParseReceipt(data []byte) (*Receipt, error) {
	var r Receipt
	if err := strictJSON(data, &r); err != nil {
		return nil, err
	}
	if _, err := r.Message(); err != nil {
		return nil, err
	}
	return &r, nil
}

// ParseStatement decodes a statement from JSON strictly. It does not check
// the signature.
func ParseStatement(data []byte) (*Statement, error) {
	var s Statement
	if err := strictJSON(data, &s); err != nil {
		return nil, err
	}
	if _, err := s.Message(); err != nil {
		return nil, err
	}
	return &s, nil
}

func strictJSON(data []byte, v any) error {
	if len(data) > MaxJSON {
		return fmt.Errorf("%w: %d bytes of JSON, more than %d", ErrInvalid, len(data), MaxJSON)
	}
	if err := strictjson.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}
