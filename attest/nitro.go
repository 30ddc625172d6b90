package attest

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// NSMDevice is the path of the Nitro Secure Module device inside an enclave.
const NSMDevice = "/dev/nsm"

// nsmMaxRequest and nsmMaxResponse are the buffer sizes of AWS's NSM driver
// library (aws-nitro-enclaves-nsm-api, src/driver).
const (
	nsmMaxRequest  = 0x1000
	nsmMaxResponse = 0x3000
)

// nsmTransport sends one CBOR request to the Nitro Secure Module and returns
// its CBOR response.
type nsmTransport interface {
	roundTrip(req []byte) ([]byte, error)
	close() error
}

// Nitro is the AWS Nitro Enclaves backend: it asks the Nitro Secure Module
// for documents signed by AWS. It works only inside a Nitro enclave. It is
// safe for concurrent use.
type Nitro struct {
	mu sync.Mutex
	t  nsmTransport
}

var _ Attester = (*Nitro)(nil)

// NewNitro opens the Nitro Secure Module (NSMDevice). Outside a Nitro
// enclave it returns an error wrapping ErrUnavailable; it never falls back
// to the simulated backend.
func NewNitro() (*Nitro, error) {
	t, err := openNSM(NSMDevice)
	if err != nil {
		return nil, fmt.Errorf("%w: AWS Nitro Secure Module: %v (is this running inside a Nitro enclave?)", ErrUnavailable, err)
	}
	return &Nitro{t: t}, nil
}

// Platform returns PlatformNitro.
func (n *Nitro) Platform() string { return PlatformNitro }

// Close releases the device.
func (n *Nitro) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.t == nil {
		return nil
	}
	err := n.t.close()
	n.t = nil
	return err
}

// Attest asks the Nitro Secure Module for a document binding req.
func (n *Nitro) Attest(ctx context.Context, req Request) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := req.check(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.t == nil {
		return nil, fmt.Errorf("%w: Nitro attester is closed", ErrUnavailable)
	}
	resp, err := n.t.roundTrip(encodeNSMAttestationRequest(req))
	if err != nil {
		return nil, fmt.Errorf("attest: Nitro Secure Module: %w", err)
	}
	doc, err := decodeNSMAttestationResponse(resp)
	if err != nil {
		return nil, fmt.Errorf("attest: Nitro Secure Module: %w", err)
	}
	return doc, nil
}

// encodeNSMAttestationRequest encodes the NSM API's Request::Attestation as
// its driver does (serde, externally tagged enum):
//
//	{"Attestation": {"user_data": bytes/null, "nonce": bytes/null, "public_key": bytes/null}}
func encodeNSMAttestationRequest(req Request) []byte {
	b := appendHead(nil, majorMap, 1)
	b = appendText(b, "Attestation")
	b = appendHead(b, majorMap, 3)
	b = appendText(b, "user_data")
	b = appendOptBytes(b, nilIfEmpty(req.UserData))
	b = appendText(b, "nonce")
	b = appendOptBytes(b, nilIfEmpty(req.Nonce))
	b = appendText(b, "public_key")
	b = appendOptBytes(b, nilIfEmpty(req.PublicKey))
	return b
}

// decodeNSMAttestationResponse decodes {"Attestation": {"document": bytes}}
// or {"Error": "<ErrorCode>"}.
func decodeNSMAttestationResponse(resp []byte) ([]byte, error) {
	r := &cborReader{b: resp}
	n, err := r.count(majorMap)
	if err != nil || n != 1 {
		return nil, errors.New("malformed response")
	}
	variant, err := r.text()
	if err != nil {
		return nil, errors.New("malformed response")
	}
	switch variant {
	case "Error":
		code, err := r.text()
		if err != nil {
			return nil, errors.New("malformed error response")
		}
		return nil, fmt.Errorf("error %s", code)
	case "Attestation":
		if n, err := r.count(majorMap); err != nil || n != 1 {
			return nil, errors.New("malformed attestation response")
		}
		if k, err := r.text(); err != nil || k != "document" {
			return nil, errors.New("malformed attestation response")
		}
		doc, err := r.bytes(1, nsmMaxResponse, false)
		if err != nil {
			return nil, fmt.Errorf("malformed attestation response: %v", err)
		}
		if r.remaining() != 0 {
			return nil, errors.New("trailing data after attestation response")
		}
		if _, err := decodeSign1(doc); err != nil {
			return nil, err
		}
		return doc, nil
	default:
		return nil, fmt.Errorf("unexpected response %q", variant)
	}
}
