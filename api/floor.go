package api

import (
	"errors"
	"fmt"

	"github.com/vouch-dev/vouch/internal/strictjson"
	"github.com/vouch-dev/vouch/receipt"
)

// MaxFloorRequest bounds a floor request's body: a receipt and an output
// of up to 64 KiB (the election function's output limit) in base64.
const MaxFloorRequest = 128 << 10

// FloorRequest is a proof of rollback (POST /v1/functions/{id}/floor): a
// result the runtime signed, as a node kept it. It needs no credential:
// the receipt's signature authenticates it.
type FloorRequest struct {
	Receipt receipt.Receipt `json:"receipt"`
	Output  []byte          `json:"output"`
}

// FloorResult is the runtime's answer to a FloorRequest.
type FloorResult struct {
	// RolledBack says the proof was above the runtime's state: it moved
	// its seqs (and, through the function, its terms) past the proof.
	RolledBack bool `json:"rolled_back"`
	// NextSeq is the next receipt seq the runtime signs, above the proof's.
	NextSeq uint64 `json:"next_seq"`
	// Term and StoredTerm are the proof's term and the function's stored
	// one, when the output is a term certificate.
	Term       uint64 `json:"term,omitempty"`
	StoredTerm uint64 `json:"stored_term,omitempty"`
}

// ErrFloorRequest is wrapped by DecodeFloorRequest's errors.
var ErrFloorRequest = errors.New("malformed floor request")

// DecodeFloorRequest decodes a floor request strictly (no unknown fields,
// no trailing data, at most MaxFloorRequest bytes) and checks the
// receipt's form. It verifies no signature.
func DecodeFloorRequest(data []byte) (*FloorRequest, error) {
	if len(data) > MaxFloorRequest {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrFloorRequest, len(data), MaxFloorRequest)
	}
	var fr FloorRequest
	if err := strictjson.Unmarshal(data, &fr); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFloorRequest, err)
	}
	if _, err := fr.Receipt.Message(); err != nil {
		return nil, fmt.Errorf("%w: receipt: %v", ErrFloorRequest, err)
	}
	if fr.Output == nil {
		return nil, fmt.Errorf("%w: output is missing", ErrFloorRequest)
	}
	return &fr, nil
}
