package attest

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// field is one raw key/value pair of a hand-built payload.
type field struct {
	key string
	val []byte
}

func rawBytes(n int) []byte { return appendBytes(nil, bytes.Repeat([]byte{0x5a}, n)) }

func validFields() []field {
	pcrs := appendHead(nil, majorMap, 2)
	pcrs = append(appendHead(pcrs, majorUint, 0), rawBytes(48)...)
	pcrs = append(appendHead(pcrs, majorUint, 1), rawBytes(32)...)
	cab := append(appendHead(nil, majorArray, 1), rawBytes(100)...)
	return []field{
		{fieldModuleID, appendText(nil, "i-1")},
		{fieldDigest, appendText(nil, "SHA384")},
		{fieldTimestamp, appendHead(nil, majorUint, 1725719859545)},
		{fieldPCRs, pcrs},
		{fieldCertificate, rawBytes(100)},
		{fieldCABundle, cab},
		{fieldPublicKey, []byte{cborNull}},
		{fieldUserData, rawBytes(0)},
		{fieldNonce, rawBytes(1024)},
	}
}

func buildPayload(fs []field) []byte {
	b := appendHead(nil, majorMap, uint64(len(fs)))
	for _, f := range fs {
		b = append(appendText(b, f.key), f.val...)
	}
	return b
}

func with(key string, val []byte) []field {
	fs := validFields()
	for i := range fs {
		if fs[i].key == key {
			fs[i].val = val
			return fs
		}
	}
	return append(fs, field{key, val})
}

func without(key string) []field {
	var out []field
	for _, f := range validFields() {
		if f.key != key {
			out = append(out, f)
		}
	}
	return out
}

func pcrMap(n int, idx uint64, size int) []byte {
	b := appendHead(nil, majorMap, uint64(n))
	for i := range n {
		k := uint64(i)
		if i == 0 {
			k = idx
		}
		b = append(appendHead(b, majorUint, k), rawBytes(size)...)
	}
	return b
}

func TestParseDocumentAccepts(t *testing.T) {
	d, err := parseDocument(buildPayload(validFields()))
	if err != nil {
		t.Fatal(err)
	}
	if d.ModuleID != "i-1" || d.Timestamp != 1725719859545 || len(d.PCRs) != 2 || len(d.PCRs[1]) != 32 ||
		d.PublicKey != nil || d.UserData == nil || len(d.UserData) != 0 || len(d.Nonce) != 1024 {
		t.Errorf("decoded %+v", d)
	}
	// Optional fields may be absent; fields may come in any order.
	fs := without(fieldNonce)
	fs[0], fs[len(fs)-1] = fs[len(fs)-1], fs[0]
	if _, err := parseDocument(buildPayload(fs)); err != nil {
		t.Errorf("reordered, no nonce: %v", err)
	}
	for _, n := range []int{1, 32} {
		if _, err := parseDocument(buildPayload(with(fieldPCRs, pcrMap(n, 0, 64)))); err != nil {
			t.Errorf("%d PCRs: %v", n, err)
		}
	}
	// SHA256 is a known digest (that of simulated documents); verify
	// decides whether the document may use it.
	if d, err := parseDocument(buildPayload(with(fieldDigest, appendText(nil, "SHA256")))); err != nil || d.Digest != "SHA256" {
		t.Errorf("digest SHA256: %v", err)
	}
	if _, err := parseDocument(buildPayload(with(fieldPublicKey, rawBytes(1024)))); err != nil {
		t.Errorf("1024-byte public key: %v", err)
	}
	// marshal and parse agree.
	again, err := parseDocument(d.marshal())
	if err != nil || !reflect.DeepEqual(d, again) {
		t.Errorf("round trip: %v\n%+v\n%+v", err, d, again)
	}
}

func TestParseDocumentRejects(t *testing.T) {
	valid := buildPayload(validFields())
	dup := append(without(fieldUserData), field{fieldNonce, rawBytes(1)})
	cases := map[string][]byte{
		"empty":                  nil,
		"not a map":              appendHead(nil, majorArray, 0),
		"null":                   {cborNull},
		"trailing byte":          append(bytes.Clone(valid), 0),
		"truncated":              valid[:len(valid)-1],
		"unknown field":          buildPayload(append(without(fieldUserData), field{"extra", []byte{cborNull}})),
		"misspelt field":         buildPayload(append(without(fieldUserData), field{"userdata", []byte{cborNull}})),
		"ten fields":             buildPayload(append(without(fieldNonce), field{"a", []byte{0}}, field{"b", []byte{0}})),
		"duplicate field":        buildPayload(dup),
		"indefinite map":         append([]byte{0xbf}, valid[1:]...),
		"non-text key":           append(appendHead(nil, majorMap, 1), 0x01, 0x01),
		"missing module_id":      buildPayload(without(fieldModuleID)),
		"missing digest":         buildPayload(without(fieldDigest)),
		"missing timestamp":      buildPayload(without(fieldTimestamp)),
		"missing pcrs":           buildPayload(without(fieldPCRs)),
		"missing certificate":    buildPayload(without(fieldCertificate)),
		"missing cabundle":       buildPayload(without(fieldCABundle)),
		"empty module_id":        buildPayload(with(fieldModuleID, appendText(nil, ""))),
		"bytes module_id":        buildPayload(with(fieldModuleID, rawBytes(3))),
		"invalid UTF-8":          buildPayload(with(fieldModuleID, []byte{0x62, 0xff, 0xfe})),
		"null module_id":         buildPayload(with(fieldModuleID, []byte{cborNull})),
		"digest SHA512":          buildPayload(with(fieldDigest, appendText(nil, "SHA512"))),
		"digest sha256":          buildPayload(with(fieldDigest, appendText(nil, "sha256"))),
		"zero timestamp":         buildPayload(with(fieldTimestamp, []byte{0x00})),
		"negative timestamp":     buildPayload(with(fieldTimestamp, []byte{0x20})),
		"huge timestamp":         buildPayload(with(fieldTimestamp, appendHead(nil, majorUint, 1<<63))),
		"float timestamp":        buildPayload(with(fieldTimestamp, []byte{0xf9, 0x3c, 0x00})),
		"tagged timestamp":       buildPayload(with(fieldTimestamp, append([]byte{0xc1}, appendHead(nil, majorUint, 5)...))),
		"no PCRs":                buildPayload(with(fieldPCRs, appendHead(nil, majorMap, 0))),
		"33 PCRs":                buildPayload(with(fieldPCRs, pcrMap(33, 0, 48))),
		"PCR index 32":           buildPayload(with(fieldPCRs, pcrMap(1, 32, 48))),
		"PCR 33 bytes":           buildPayload(with(fieldPCRs, pcrMap(1, 0, 33))),
		"PCR 16 bytes":           buildPayload(with(fieldPCRs, pcrMap(1, 0, 16))),
		"PCR 96 bytes":           buildPayload(with(fieldPCRs, pcrMap(1, 0, 96))),
		"PCR negative index":     buildPayload(with(fieldPCRs, append(appendHead(nil, majorMap, 1), append([]byte{0x20}, rawBytes(48)...)...))),
		"PCR text index":         buildPayload(with(fieldPCRs, append(append(appendHead(nil, majorMap, 1), appendText(nil, "0")...), rawBytes(48)...))),
		"PCR duplicate index":    buildPayload(with(fieldPCRs, append(append(appendHead(nil, majorMap, 2), append([]byte{0x00}, rawBytes(48)...)...), append([]byte{0x00}, rawBytes(48)...)...))),
		"PCR as array":           buildPayload(with(fieldPCRs, append(appendHead(nil, majorMap, 1), append([]byte{0x00}, append(appendHead(nil, majorArray, 32), bytes.Repeat([]byte{0}, 32)...)...)...))),
		"PCRs as array":          buildPayload(with(fieldPCRs, append(appendHead(nil, majorArray, 1), rawBytes(48)...))),
		"empty certificate":      buildPayload(with(fieldCertificate, rawBytes(0))),
		"1025-byte certificate":  buildPayload(with(fieldCertificate, rawBytes(1025))),
		"null certificate":       buildPayload(with(fieldCertificate, []byte{cborNull})),
		"empty cabundle":         buildPayload(with(fieldCABundle, appendHead(nil, majorArray, 0))),
		"empty cabundle entry":   buildPayload(with(fieldCABundle, append(appendHead(nil, majorArray, 1), rawBytes(0)...))),
		"1025-byte cabundle":     buildPayload(with(fieldCABundle, append(appendHead(nil, majorArray, 1), rawBytes(1025)...))),
		"cabundle text entry":    buildPayload(with(fieldCABundle, append(appendHead(nil, majorArray, 1), appendText(nil, "x")...))),
		"null cabundle":          buildPayload(with(fieldCABundle, []byte{cborNull})),
		"empty public_key":       buildPayload(with(fieldPublicKey, rawBytes(0))),
		"1025-byte public_key":   buildPayload(with(fieldPublicKey, rawBytes(1025))),
		"1025-byte user_data":    buildPayload(with(fieldUserData, rawBytes(1025))),
		"1025-byte nonce":        buildPayload(with(fieldNonce, rawBytes(1025))),
		"text nonce":             buildPayload(with(fieldNonce, appendText(nil, "n"))),
		"undefined nonce":        buildPayload(with(fieldNonce, []byte{0xf7})),
		"false user_data":        buildPayload(with(fieldUserData, []byte{0xf4})),
		"indefinite user_data":   buildPayload(with(fieldUserData, []byte{0x5f, 0x41, 0x00, 0xff})),
		"reserved additional 28": buildPayload(with(fieldUserData, []byte{0x5c})),
		"length past end":        buildPayload(with(fieldUserData, []byte{0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})),
		"huge map count":         {0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"too large":              append(appendHead(nil, majorBytes, MaxPayloadLen), make([]byte, MaxPayloadLen)...),
	}
	for name, b := range cases {
		d, err := parseDocument(b)
		if err == nil || d != nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if testing.Verbose() {
			t.Logf("%s: %v", name, err)
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error %q does not wrap ErrMalformed", name, err)
		}
	}
}
