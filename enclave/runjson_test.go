package enclave

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/receipt"
)

func stdRunJSON(t testing.TB, res *api.RunResult) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(res); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sampleResult() api.RunResult {
	return api.RunResult{
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
}

// TestRunResultJSON checks that the hand-written encoder writes exactly
// what encoding/json writes.
func TestRunResultJSON(t *testing.T) {
	cases := map[string]func(r *api.RunResult){
		"plain":           func(r *api.RunResult) {},
		"empty output":    func(r *api.RunResult) { r.Output = nil },
		"zero output":     func(r *api.RunResult) { r.Output = []byte{} },
		"sealed":          func(r *api.RunResult) { r.Output, r.SealedOutput = nil, bytes.Repeat([]byte{1, 2, 3}, 100) },
		"binary output":   func(r *api.RunResult) { r.Output = []byte{0, 0xff, '<', '"', '\\'} },
		"no signature":    func(r *api.RunResult) { r.Receipt.Signature = nil },
		"empty signature": func(r *api.RunResult) { r.Receipt.Signature = []byte{} },
		"escapes":         func(r *api.RunResult) { r.Receipt.FunctionID = "a<b>&\"c\\\n\x01é\xff" },
		"zero":            func(r *api.RunResult) { *r = api.RunResult{} },
		"local time":      func(r *api.RunResult) { r.Receipt.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 5400)) },
		"max seq":         func(r *api.RunResult) { r.Receipt.Seq = 1<<64 - 1 },
		"log":             func(r *api.RunResult) { r.Log = "starting\ndone\n" },
		"binary log":      func(r *api.RunResult) { r.Log = "a<b>&\"\x00\xff\u2028é" },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			res := sampleResult()
			mod(&res)
			got, ok := appendRunResult(nil, &res)
			if !ok {
				t.Fatal("appendRunResult refused")
			}
			if want := stdRunJSON(t, &res); !bytes.Equal(got, want) {
				t.Fatalf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
	// A time RFC 3339 cannot hold: encoding/json fails, so must the fast
	// path (and writeRunResult then answers as writeJSON does).
	res := sampleResult()
	res.Receipt.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, ok := appendRunResult(nil, &res); ok {
		t.Fatal("year 10000 accepted")
	}
}

func TestWriteRunResult(t *testing.T) {
	res := sampleResult()
	for _, size := range []int{0, 10, 3000, 200 << 10} {
		res.Output = bytes.Repeat([]byte("x"), size)
		rec := httptest.NewRecorder()
		writeRunResult(rec, &res)
		want := stdRunJSON(t, &res)
		if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), want) {
			t.Fatalf("size %d: status %d body %.100s", size, rec.Code, rec.Body.Bytes())
		}
		if ct, cl := rec.Header().Get("Content-Type"), rec.Header().Get("Content-Length"); ct != "application/json" || cl != strconv.Itoa(len(want)) {
			t.Fatalf("size %d: Content-Type %q Content-Length %q", size, ct, cl)
		}
	}
}

func FuzzRunResultJSON(f *testing.F) {
	f.Add([]byte("out"), []byte(nil), "fn", "sum", uint64(1), int64(0), []byte("sig"), "")
	f.Add([]byte(nil), []byte("sealed"), "a<b", "\xff", uint64(0), int64(-1), []byte(nil), "log\n\xff")
	f.Fuzz(func(t *testing.T, out, sealed []byte, id, sum string, seq uint64, nanos int64, sig []byte, log string) {
		res := sampleResult()
		res.Output, res.SealedOutput, res.Receipt.FunctionID, res.Receipt.FunctionChecksum = out, sealed, id, sum
		res.Log = log
		res.Receipt.Seq, res.Receipt.Signature = seq, sig
		res.Receipt.Time = time.Unix(0, nanos).UTC()
		got, ok := appendRunResult(nil, &res)
		var buf bytes.Buffer
		err := json.NewEncoder(&buf).Encode(&res)
		if ok != (err == nil) || ok && !bytes.Equal(got, buf.Bytes()) {
			t.Fatalf("fast %q (%v), encoding/json %q (%v)", got, ok, buf.Bytes(), err)
		}
	})
}
