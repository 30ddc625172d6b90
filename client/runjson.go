package client

import (
	"encoding/base64"
	"encoding/json"
	"strconv"

	"github.com/vouch-dev/vouch/api"
)

// A run's answer is decoded on every run, so the form the runtime writes
// (encoding/json's, without whitespace, fields in order) is read by hand.
// Anything else, down to an escape in a string, goes to encoding/json; both
// paths give the same result (FuzzDecodeRunResult checks this).

// decodeRunResult decodes a run's answer as json.Unmarshal would.
func decodeRunResult(data []byte, out *api.RunResult) error {
	var res api.RunResult
	if fastRunResult(data, &res) {
		*out = res
		return nil
	}
	return json.Unmarshal(data, out)
}

// fastRunResult decodes the runtime's exact encoding of a RunResult and
// reports whether it could.
func fastRunResult(data []byte, res *api.RunResult) bool {
	d := runDecoder{b: data, ok: true}
	d.lit(`{`)
	if d.peekLit(`"output":`) {
		res.Output = d.base64()
		d.lit(`,`)
	}
	if d.peekLit(`"sealed_output":`) {
		res.SealedOutput = d.base64()
		d.lit(`,`)
	}
	r := &res.Receipt
	d.lit(`"receipt":{"function_id":`)
	r.FunctionID = d.str()
	d.lit(`,"function_checksum":`)
	r.FunctionChecksum = d.str()
	d.lit(`,"input_sha256":`)
	r.InputSHA256 = d.str()
	d.lit(`,"output_sha256":`)
	r.OutputSHA256 = d.str()
	d.lit(`,"seq":`)
	r.Seq = d.uint()
	d.lit(`,"time":`)
	if raw := d.rawStr(); d.ok {
		// What encoding/json does for a time.Time.
		d.ok = r.Time.UnmarshalJSON(raw) == nil
	}
	d.lit(`,"key_id":`)
	r.KeyID = d.str()
	d.lit(`,"signature":`)
	r.Signature = d.base64()
	d.lit(`}}`)
	for d.ok && len(d.b) > 0 && (d.b[0] == '\n' || d.b[0] == ' ' || d.b[0] == '\r' || d.b[0] == '\t') {
		d.b = d.b[1:]
	}
	return d.ok && len(d.b) == 0
}

type runDecoder struct {
	b  []byte
	ok bool
}

func (d *runDecoder) lit(s string) {
	if !d.peekLit(s) {
		d.ok = false
	}
}

// peekLit consumes s if the input starts with it.
func (d *runDecoder) peekLit(s string) bool {
	if !d.ok || len(d.b) < len(s) || string(d.b[:len(s)]) != s {
		return false
	}
	d.b = d.b[len(s):]
	return true
}

// rawStr returns a string with its quotes, if it has no escapes and only
// printable ASCII.
func (d *runDecoder) rawStr() []byte {
	if !d.ok || len(d.b) < 2 || d.b[0] != '"' {
		d.ok = false
		return nil
	}
	for i := 1; i < len(d.b); i++ {
		switch c := d.b[i]; {
		case c == '"':
			s := d.b[:i+1]
			d.b = d.b[i+1:]
			return s
		case c < 0x20 || c >= 0x7f || c == '\\':
			d.ok = false
			return nil
		}
	}
	d.ok = false
	return nil
}

func (d *runDecoder) str() string {
	if s := d.rawStr(); d.ok {
		return string(s[1 : len(s)-1])
	}
	return ""
}

// base64 decodes a string of standard base64, as encoding/json decodes a
// []byte.
func (d *runDecoder) base64() []byte {
	s := d.rawStr()
	if !d.ok {
		return nil
	}
	s = s[1 : len(s)-1]
	out := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(out, s)
	if err != nil {
		d.ok = false
		return nil
	}
	return out[:n]
}

// uint reads a JSON number that is a uint64 in decimal without a leading
// zero.
func (d *runDecoder) uint() uint64 {
	i := 0
	for i < len(d.b) && d.b[i] >= '0' && d.b[i] <= '9' {
		i++
	}
	if !d.ok || i == 0 || i > 1 && d.b[0] == '0' {
		d.ok = false
		return 0
	}
	v, err := strconv.ParseUint(string(d.b[:i]), 10, 64)
	if err != nil {
		d.ok = false
		return 0
	}
	d.b = d.b[i:]
	return v
}
