package enclave

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/internal/readall"
)

// The run answer is the one response written on every run, so it is
// encoded by hand instead of by encoding/json's reflection. The bytes are
// exactly what json.NewEncoder(w).Encode(result) writes (TestRunResultJSON
// and FuzzRunResultJSON check this); anything the fast encoder is not sure
// of goes through encoding/json.

// runBufs holds buffers for run answers; big ones are not kept.
var runBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

const maxPooledBuf = 64 << 10

// writeRunResult writes a successful run's answer with its Content-Length,
// in one Write.
func writeRunResult(w http.ResponseWriter, res *api.RunResult) {
	bp := runBufs.Get().(*[]byte)
	b, ok := appendRunResult((*bp)[:0], res)
	if !ok {
		runBufs.Put(bp)
		writeJSON(w, http.StatusOK, res)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	if cap(b) <= maxPooledBuf {
		*bp = b[:0]
		runBufs.Put(bp)
	}
}

// appendRunResult appends res as encoding/json's Encoder writes it,
// newline included. It reports false if it cannot.
func appendRunResult(b []byte, res *api.RunResult) ([]byte, bool) {
	b = append(b, '{')
	if len(res.Output) > 0 {
		b = append(b, `"output":`...)
		b = appendBase64(b, res.Output)
		b = append(b, ',')
	}
	if len(res.SealedOutput) > 0 {
		b = append(b, `"sealed_output":`...)
		b = appendBase64(b, res.SealedOutput)
		b = append(b, ',')
	}
	r := &res.Receipt
	b = append(b, `"receipt":{"function_id":`...)
	b = appendString(b, r.FunctionID)
	b = append(b, `,"function_checksum":`...)
	b = appendString(b, r.FunctionChecksum)
	b = append(b, `,"input_sha256":`...)
	b = appendString(b, r.InputSHA256)
	b = append(b, `,"output_sha256":`...)
	b = appendString(b, r.OutputSHA256)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"time":"`...)
	b, err := r.Time.AppendText(b) // what Time.MarshalJSON writes, quotes aside
	if err != nil {
		return nil, false
	}
	b = append(b, `","key_id":`...)
	b = appendString(b, r.KeyID)
	b = append(b, `,"signature":`...)
	if r.Signature == nil {
		b = append(b, "null"...)
	} else {
		b = appendBase64(b, r.Signature)
	}
	b = append(b, '}')
	if res.Log != "" {
		b = append(b, `,"log":`...)
		b = appendString(b, res.Log)
	}
	return append(b, "}\n"...), true
}

func appendBase64(b, p []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, p)
	return append(b, '"')
}

// appendString quotes s as encoding/json does (with HTML escaping). The IDs
// and digests of a receipt need no escaping; anything else is left to
// encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// readInput reads a run request's body, at most limit bytes. A body whose
// length is announced is read into a buffer of that size.
func readInput(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	n := r.ContentLength
	if n > limit {
		n = 0
	}
	return readall.Sized(http.MaxBytesReader(w, r.Body, limit), n)
}
