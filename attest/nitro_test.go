package attest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
)

type fakeNSM struct {
	gotReq []byte
	resp   []byte
	err    error
	closed bool
}

func (f *fakeNSM) roundTrip(req []byte) ([]byte, error) {
	f.gotReq = bytes.Clone(req)
	return f.resp, f.err
}

func (f *fakeNSM) close() error { f.closed = true; return nil }

func nsmResponse(doc []byte) []byte {
	b := appendHead(nil, majorMap, 1)
	b = appendText(b, "Attestation")
	b = appendHead(b, majorMap, 1)
	b = appendText(b, "document")
	return appendBytes(b, doc)
}

func TestNitroRequestEncoding(t *testing.T) {
	got := encodeNSMAttestationRequest(Request{Nonce: []byte{0xaa}})
	// {"Attestation": {"user_data": null, "nonce": h'aa', "public_key": null}}
	want := "a1" + "6b4174746573746174696f6e" + "a3" +
		"69757365725f64617461" + "f6" +
		"656e6f6e6365" + "41aa" +
		"6a7075626c69635f6b6579" + "f6"
	if hex.EncodeToString(got) != want {
		t.Errorf("request %x\nwant    %s", got, want)
	}
}

func TestNitroAttestWithFakeDevice(t *testing.T) {
	real := realDoc(t)
	dev := &fakeNSM{resp: nsmResponse(real)}
	n := &Nitro{t: dev}
	if n.Platform() != PlatformNitro {
		t.Errorf("platform %q", n.Platform())
	}
	doc, err := n.Attest(t.Context(), Request{Nonce: []byte("n"), UserData: []byte("u"), PublicKey: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, real) {
		t.Error("document not passed through")
	}
	if _, err := Verify(doc, Policy{Now: at(nitroTime)}); err != nil {
		t.Error(err)
	}
	if !bytes.Contains(dev.gotReq, []byte("user_data")) || !bytes.HasSuffix(dev.gotReq, []byte{0x41, 'k'}) {
		t.Errorf("request %x", dev.gotReq)
	}

	errResp := append(appendText(appendHead(nil, majorMap, 1), "Error"), appendText(nil, "InvalidArgument")...)
	bad := map[string][]byte{
		"error":       errResp,
		"empty":       nil,
		"garbage":     []byte("garbage"),
		"not a doc":   nsmResponse([]byte("not a document")),
		"trailing":    append(nsmResponse(real), 0),
		"unknown":     append(appendText(appendHead(nil, majorMap, 1), "GetRandom"), 0xa0),
		"no document": append(appendText(appendHead(nil, majorMap, 1), "Attestation"), 0xa0),
	}
	for name, resp := range bad {
		dev.resp = resp
		if _, err := n.Attest(t.Context(), Request{}); err == nil {
			t.Errorf("%s: accepted", name)
		} else if name == "error" && !strings.Contains(err.Error(), "InvalidArgument") {
			t.Errorf("error response: %v", err)
		}
	}
	dev.resp, dev.err = nil, errors.New("device gone")
	if _, err := n.Attest(t.Context(), Request{}); err == nil {
		t.Error("transport error ignored")
	}
	if _, err := n.Attest(t.Context(), Request{UserData: make([]byte, 2000)}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("oversized request: %v", err)
	}
	if err := n.Close(); err != nil || !dev.closed {
		t.Errorf("Close: %v closed=%v", err, dev.closed)
	}
	if _, err := n.Attest(t.Context(), Request{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("after Close: %v", err)
	}
}

func TestNewNitroOutsideEnclave(t *testing.T) {
	if _, err := os.Stat(NSMDevice); err == nil {
		t.Skip(NSMDevice, " exists: this looks like a Nitro enclave")
	}
	n, err := NewNitro()
	if !errors.Is(err, ErrUnavailable) || n != nil {
		t.Errorf("got %v, %v; want ErrUnavailable", n, err)
	}
}
