package client

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/receipt"
)

func sampleRunJSON(t testing.TB, mod func(*api.RunResult)) []byte {
	t.Helper()
	res := api.RunResult{
		Output: []byte(`{"cluster":"demo","leader":"5002"}`),
		Receipt: receipt.Receipt{
			FunctionID:       "abcdefghijklmnopqrstuvwxyz",
			FunctionChecksum: strings.Repeat("ab", 32),
			InputSHA256:      strings.Repeat("01", 32),
			OutputSHA256:     strings.Repeat("ef", 32),
			Seq:              4097,
			Time:             time.Date(2026, 11, 23, 21, 0, 0, 123456789, time.UTC),
			KeyID:            strings.Repeat("9f", 32),
			Signature:        bytes.Repeat([]byte{0xfb}, 64),
		},
	}
	if mod != nil {
		mod(&res)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(&res); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkSame decodes data both ways and fails unless the results agree. It
// returns whether the fast path took it.
func checkSame(t testing.TB, data []byte) bool {
	t.Helper()
	var fast, std api.RunResult
	took := fastRunResult(data, &fast)
	err := json.Unmarshal(data, &std)
	if took && err != nil {
		t.Fatalf("fast path accepted %q, which encoding/json refuses: %v", data, err)
	}
	if took && !reflect.DeepEqual(fast, std) {
		t.Fatalf("for %q: fast %+v, encoding/json %+v", data, fast, std)
	}
	var via api.RunResult
	derr := decodeRunResult(data, &via)
	if (derr == nil) != (err == nil) || err == nil && !reflect.DeepEqual(via, std) {
		t.Fatalf("for %q: decodeRunResult %+v (%v), encoding/json %+v (%v)", data, via, derr, std, err)
	}
	return took
}

func TestDecodeRunResult(t *testing.T) {
	fast := map[string]func(*api.RunResult){
		"plain":        nil,
		"no output":    func(r *api.RunResult) { r.Output = nil },
		"sealed":       func(r *api.RunResult) { r.Output, r.SealedOutput = nil, []byte{1, 2, 3, 4} },
		"both":         func(r *api.RunResult) { r.SealedOutput = []byte{9} },
		"local time":   func(r *api.RunResult) { r.Receipt.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", -3600)) },
		"zero seq":     func(r *api.RunResult) { r.Receipt.Seq = 0 },
		"max seq":      func(r *api.RunResult) { r.Receipt.Seq = 1<<64 - 1 },
		"empty fields": func(r *api.RunResult) { r.Receipt.FunctionID, r.Receipt.KeyID = "", "" },
	}
	for name, mod := range fast {
		if !checkSame(t, sampleRunJSON(t, mod)) {
			t.Errorf("%s: the runtime's encoding did not take the fast path", name)
		}
	}
	// Everything else goes to encoding/json, with the same outcome.
	good := string(sampleRunJSON(t, nil))
	for _, data := range []string{
		string(sampleRunJSON(t, func(r *api.RunResult) { r.Receipt.Signature = nil })), // null
		string(sampleRunJSON(t, func(r *api.RunResult) { r.Receipt.FunctionID = "a<b\"é" })),
		strings.Replace(good, `"seq":4097`, `"seq":4.097e3`, 1),
		strings.Replace(good, `"seq":4097`, `"seq":04097`, 1),
		strings.Replace(good, `"seq":4097`, `"seq":-1`, 1),
		strings.Replace(good, `"seq":4097`, `"seq":18446744073709551616`, 1),
		strings.Replace(good, `"output"`, `"Output"`, 1),
		strings.Replace(good, `{"output"`, `{ "output"`, 1),
		strings.Replace(good, `"time":"2026-11-23T21:00:00.123456789Z"`, `"time":"2026-11-23 21:00:00Z"`, 1),
		strings.Replace(good, `"time":"2026-11-23T21:00:00.123456789Z"`, `"time":"2026-11-23T24:00:00Z"`, 1),
		strings.Replace(good, `"function_id":"abc`, `"function_id":"\u0061bc`, 1),
		strings.Replace(good, `"output":"`, `"output":"!`, 1),
		strings.Replace(good, `}}`, `,"extra":1}}`, 1),
		strings.Replace(good, `}}`, `}} {}`, 1),
		good[:len(good)-5],
		`{"output":"eA==","output":"eQ==","receipt":{}}`,
		`{}`, `null`, ``,
	} {
		if checkSame(t, []byte(data)) {
			t.Errorf("fast path took %q", data)
		}
	}
}

func FuzzDecodeRunResult(f *testing.F) {
	f.Add(sampleRunJSON(f, nil))
	f.Add(sampleRunJSON(f, func(r *api.RunResult) { r.Output, r.SealedOutput = nil, []byte{1} }))
	f.Add([]byte(`{"receipt":{"function_id":"","function_checksum":"","input_sha256":"","output_sha256":"","seq":0,"time":"0001-01-01T00:00:00Z","key_id":"","signature":""}}`))
	f.Fuzz(func(t *testing.T, data []byte) { checkSame(t, data) })
}
