package api_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/vouch-dev/vouch/api"
)

// FuzzDecodeFloorRequest: the floor endpoint reads bytes from anyone.
// Decoding never panics, and what decodes encodes back to a request that
// decodes to the same thing.
func FuzzDecodeFloorRequest(f *testing.F) {
	f.Add([]byte(`{"receipt":{"function_id":"f","function_checksum":"` + hex64 + `","input_sha256":"` + hex64 + `","output_sha256":"` + hex64 + `","seq":7,"time":"2026-01-01T00:00:00Z","key_id":"` + hex64 + `","signature":"AA=="},"output":"e30="}`))
	f.Add([]byte(`{"receipt":{},"output":""}`))
	f.Add([]byte(`{"output":"e30=","x":1}`))
	f.Add([]byte("\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := api.DecodeFloorRequest(data)
		if err != nil {
			if fr != nil {
				t.Fatal("a request with an error")
			}
			return
		}
		b, err := json.Marshal(fr)
		if err != nil {
			t.Fatal(err)
		}
		again, err := api.DecodeFloorRequest(b)
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v\n%s", err, b)
		}
		if !bytes.Equal(again.Output, fr.Output) || again.Receipt.Seq != fr.Receipt.Seq || !bytes.Equal(again.Receipt.Signature, fr.Receipt.Signature) {
			t.Fatalf("round trip changed the request: %+v vs %+v", fr, again)
		}
	})
}

const hex64 = "0000000000000000000000000000000000000000000000000000000000000000"
