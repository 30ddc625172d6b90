package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/guest"
)

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{`{"cluster":"demo","node_list":["5000","5001","5002"]}`,
			`{"cluster":"demo","leader":"5002","members":["5000","5001","5002"],"members_digest":"b0b68d797edfd8f4eabb59e224a78aa3866e6fb5075aaafa3f1446faf156a1f8"}`},
		{` { "node_list" : [ "9", "10" ] , "cluster" : "c" } `,
			`{"cluster":"c","leader":"10","members":["9","10"],"members_digest":"` + digestOf("9\n10") + `"}`},
		{`{"node_list":["b","a"]}`, // no cluster: "default"
			`{"cluster":"default","leader":"b","members":["a","b"],"members_digest":"` + digestOf("a\nb") + `"}`},
		{`{"cluster":"demo","node_list":["\u0035\u0030"]}`, // escapes take the general path
			`{"cluster":"demo","leader":"50","members":["50"],"members_digest":"` + digestOf("50") + `"}`},
		// Numbers, as the original demo sent them, become their decimal
		// strings; lists may mix them with strings.
		{`{"cluster":"demo","node_list":[1,2]}`,
			`{"cluster":"demo","leader":"2","members":["1","2"],"members_digest":"` + digestOf("1\n2") + `"}`},
		{`{"node_list":[5001, "5000", 0, 9007199254740992]}`,
			`{"cluster":"default","leader":"9007199254740992","members":["0","5000","5001","9007199254740992"],"members_digest":"` + digestOf("0\n5000\n5001\n9007199254740992") + `"}`},
		{`{"cluster":"q","node_list":["a\"b","c\\d"]}`,
			`{"cluster":"q","leader":"c\\d","members":["a\"b","c\\d"],"members_digest":"` + digestOf("a\"b\nc\\d") + `"}`},
	} {
		out, err := handle([]byte(tc.in))
		if err != nil {
			t.Fatalf("handle(%s): %v", tc.in, err)
		}
		if string(out) != tc.want {
			t.Errorf("handle(%s) =\n%s\nwant\n%s", tc.in, out, tc.want)
		}
		var o Output
		if err := json.Unmarshal(out, &o); err != nil {
			t.Errorf("output is not JSON: %v", err)
		}
	}
}

// digestOf is the documented members digest: SHA-256 over the sorted IDs
// joined by newlines.
func digestOf(joined string) string {
	sum := sha256.Sum256([]byte(joined))
	return hex.EncodeToString(sum[:])
}

func TestDecideRefuses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{``, "vouch-refusal:malformed_input: malformed input"},
		{`[]`, "malformed input"},
		{`{"cluster":"demo"}`, "vouch-refusal:missing_value: malformed input: node_list is missing"},
		{`{"cluster":"demo","node_list":[]}`, "vouch-refusal:missing_value: invalid member list: node_list is empty"},
		{`{"cluster":"demo","node_list":["1","1"]}`, `vouch-refusal:duplicate_value: invalid member list: duplicate member ID "1"`},
		{`{"cluster":"demo","node_list":["1"],"extra":1}`, "unknown field"},
		{`{"cluster":"demo","node_list":["1"]} {}`, "trailing data"},
		{`{"cluster":"demo","node_list":[1.5]}`, "vouch-refusal:invalid_value: node_list[0]: 1.5 is not a node ID: it has a fraction"},
		{`{"cluster":"demo","node_list":[1.0]}`, "invalid_value: node_list[0]: 1.0 is not a node ID: it has a fraction"},
		{`{"cluster":"demo","node_list":["a",1e3]}`, "invalid_value: node_list[1]: 1e3 is not a node ID: it has an exponent"},
		{`{"cluster":"demo","node_list":[-1]}`, "invalid_value: node_list[0]: -1 is not a node ID: it is negative"},
		{`{"cluster":"demo","node_list":[-0]}`, "it is negative"},
		{`{"cluster":"demo","node_list":[9007199254740993]}`, "invalid_value: node_list[0]: 9007199254740993 is not a node ID: it is larger than 2^53"},
		{`{"cluster":"demo","node_list":[123456789012345678901234567890]}`, "larger than 2^53"},
		{`{"cluster":"demo","node_list":[true]}`, "invalid_value: node_list[0]: true is not a node ID"},
		{`{"cluster":"demo","node_list":[{}]}`, "invalid_value"},
		{`{"cluster":"demo","node_list":[1,"1"]}`, `vouch-refusal:duplicate_value: invalid member list: duplicate member ID "1" (a number and a string`},
		{`{"cluster":"demo","node_list":[01]}`, "vouch-refusal:malformed_input"},
		{`{"cluster":"demo","node_list":[1,]}`, "vouch-refusal:malformed_input"},
		{`{"cluster":"de mo","node_list":["1"]}`, "vouch-refusal:invalid_value: invalid cluster name"},
		{`{"cluster":"demo","node_list":["a b"]}`, "printable ASCII"},
		{`{"cluster":"demo","node_list":["1"]`, "malformed input"},
		{`null`, "null is not allowed"},
		{`{"cluster":null,"node_list":["1"]}`, "cluster: null is not allowed"},
		{`{"cluster":"demo","node_list":["1",null]}`, "node_list: null is not allowed"},
		{`{"cluster":"demo","node_list":null}`, "node_list is missing"},
		{`{"Cluster":"demo","node_list":["1"]}`, "unknown field"},
		{`{"node_list":["1"],"node_list":["2"]}`, "appears twice"},
		{`{"NODE_LIST":["1"]}`, "unknown field"},
		{`{"node_list":["\u0031"],"cluster":"a","cluster":"b"}`, "appears twice"},
	} {
		_, err := handle([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("handle(%q) error = %v, want it to mention %q", tc.in, err, tc.want)
		}
	}
}

// FuzzDecodeAgrees checks that the fast decoder and encoding/json accept the
// same documents and read them the same way, and that handle never panics.
func FuzzDecodeAgrees(f *testing.F) {
	f.Add([]byte(`{"cluster":"demo","node_list":["5000","5001","5002"]}`))
	f.Add([]byte(`{"node_list":[],"cluster":""}`))
	f.Add([]byte(`{"cluster":"a","cluster":"b","node_list":["1"]}`))
	f.Add([]byte(`{"node_list":null}`))
	f.Add([]byte(`{"cluster":null,"node_list":["1",null]}`))
	f.Add([]byte(`{"node_list":[1,"2",3.5,-4,5e1,9007199254740993]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if _, err := handle(raw); err != nil {
			// Every failure is a refusal with a listed code, so a sealed
			// caller learns the code.
			if r, ok := err.(*guest.Refusal); !ok || !listed[r.Code] {
				t.Fatalf("handle(%q) failed with %v, not a listed refusal", raw, err)
			}
		}
		fast, err := decodeFast(raw)
		if err == errSlowPath {
			return
		}
		slow, serr := decodeSlow(raw)
		if (err == nil) != (serr == nil) {
			t.Fatalf("fast err %v, slow err %v for %q", err, serr, raw)
		}
		if err == nil && !reflect.DeepEqual(normalise(fast), normalise(slow)) {
			t.Fatalf("fast %+v, slow %+v for %q", fast, slow, raw)
		}
	})
}

var listed = map[string]bool{guest.MalformedInput: true, guest.MissingValue: true, guest.InvalidValue: true,
	guest.DuplicateValue: true, guest.TooManyValues: true, guest.NotPermitted: true}

func normalise(in *Input) Input {
	out := *in
	if len(out.NodeList) == 0 && out.NodeList != nil {
		out.NodeList = []string{}
	}
	return out
}

func BenchmarkHandle(b *testing.B) {
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprint(5000+i))
	}
	in := []byte(`{"cluster":"demo","node_list":[` + strings.Join(ids, ",") + `]}`)
	for i := 0; i < b.N; i++ {
		if _, err := handle(in); err != nil {
			b.Fatal(err)
		}
	}
}

// general is handle without answer: the path that decides every input
// answer declines, and that answered every input before answer existed.
func general(in []byte) ([]byte, error) {
	out, err := decide(in)
	if err != nil {
		return nil, err
	}
	return encodeOutput(out), nil
}

// TestAnswerTakesTheCommonInputs checks that answer, not the general path,
// serves the inputs the runtime sees most, and gives the general path's
// bytes; and that it declines what only the general path may decide.
func TestAnswerTakesTheCommonInputs(t *testing.T) {
	for _, in := range []string{
		`{"cluster":"demo","node_list":["5000","5001","5002"]}`,
		` { "node_list" : [ "9", "10" ] , "cluster" : "c" } `,
		`{"node_list":["0","1","10"]}`,
		`{"cluster":"","node_list":["a","b","node-10","node-2"]}`,
		`{"cluster":"x.y_z-1","node_list":["!","~"]}`,
		`{"cluster":"` + strings.Repeat("c", 64) + `","node_list":["` + strings.Repeat("9", 128) + `"]}`,
		string(leaderInput(100)),
	} {
		out, ok := answer([]byte(in))
		if !ok {
			t.Errorf("answer(%s) declined", in)
			continue
		}
		want, err := general([]byte(in))
		if err != nil || string(out) != string(want) {
			t.Errorf("answer(%s) = %s, general path %s, %v", in, out, want, err)
		}
	}
	for _, in := range []string{
		`{"node_list":["b","a"]}`,               // needs sorting
		`{"node_list":["1","1"]}`,               // duplicate
		`{"node_list":["01","2"]}`,              // leading zero
		`{"node_list":["9","10","a"]}`,          // not numeric: "9" > "10" byte-wise
		`{"node_list":[1,2]}`,                   // numbers
		`{"node_list":["\u0031"]}`,              // escapes
		`{"node_list":[]}`,                      // empty
		`{"cluster":"demo"}`,                    // no list
		`{"cluster":"de mo","node_list":["1"]}`, // bad cluster
		`{"node_list":["a b"]}`,                 // bad ID
		`{"node_list":["1"],"node_list":["2"]}`, // repeated field
		`{"node_list":["1"]} {}`,                // trailing data
		`{"cluster":"` + strings.Repeat("c", 65) + `","node_list":["1"]}`,
		`{"node_list":["` + strings.Repeat("9", 129) + `"]}`,
	} {
		if out, ok := answer([]byte(in)); ok {
			t.Errorf("answer(%s) = %s, want it declined", in, out)
		}
	}
}

func leaderInput(n int) []byte {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprint(5000+i))
	}
	return []byte(`{"cluster":"demo","node_list":[` + strings.Join(ids, ",") + `]}`)
}

// FuzzAnswerAgrees checks that wherever answer gives an output, the general
// path gives the same bytes.
func FuzzAnswerAgrees(f *testing.F) {
	f.Add([]byte(`{"cluster":"demo","node_list":["5000","5001","5002"]}`))
	f.Add([]byte(` { "node_list" : [ "9", "10" ] , "cluster" : "c" } `))
	f.Add([]byte(`{"node_list":["0","1","10","a"]}`))
	f.Add([]byte(`{"cluster":"","node_list":["a","ab","b"]}`))
	f.Add([]byte(`{"node_list":["007","7"]}`))
	f.Add([]byte(`{"node_list":["1","1"]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, ok := answer(raw)
		if !ok {
			return
		}
		want, err := general(raw)
		if err != nil {
			t.Fatalf("answer(%q) = %s, general path refused: %v", raw, out, err)
		}
		if string(out) != string(want) {
			t.Fatalf("answer(%q) =\n%s\ngeneral path\n%s", raw, out, want)
		}
	})
}

func BenchmarkAnswer(b *testing.B) {
	in := leaderInput(100)
	for b.Loop() {
		if _, ok := answer(in); !ok {
			b.Fatal("declined")
		}
	}
}
