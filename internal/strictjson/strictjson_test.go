//go:build !wasip1

package strictjson

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// decoders are the two implementations: json/v2 for the runtime and the
// nodes, the compact one for guest functions. Both must obey every rule.
var decoders = []struct {
	name string
	fn   func([]byte, any) error
}{{"v2", unmarshalV2}, {"compact", unmarshalCompact}}

type inner struct {
	N int    `json:"n"`
	S string `json:"s,omitempty"`
}

// doc has a field of every shape vouch's documents use.
type doc struct {
	Name   string            `json:"name"`
	Flag   bool              `json:"flag,omitempty"`
	Count  uint32            `json:"count,omitempty"`
	Key    []byte            `json:"key,omitempty"`
	List   []string          `json:"list"`
	Map    map[string]int    `json:"map,omitempty"`
	Ptr    *inner            `json:"ptr,omitempty"`
	In     inner             `json:"in,omitzero"`
	Arr    [2]int            `json:"arr,omitzero"`
	Raw    map[string][]byte `json:"raw,omitempty"`
	Untagd int
}

func TestUnmarshalRefuses(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"unknown member", `{"name":"a","b":2}`},
		{"two values", `{"name":"a"} {}`},
		{"stray brace", `{"name":"a"}}`},
		{"stray bracket", `{"name":"a"}]`},
		{"trailing word", `{"name":"a"} x`},
		{"wrong type", `{"name":1}`},
		{"empty", ``},
		{"truncated", `[`},
		{"duplicate name", `{"name":"a","name":"b"}`},
		{"duplicate nested name", `{"in":{"n":1,"n":2}}`},
		{"duplicate name in a map", `{"map":{"x":1,"x":2}}`},
		{"duplicate name, escaped", `{"name":"a","n\u0061me":"b"}`},
		{"upper-case name", `{"NAME":"a"}`},
		{"case-variant of a known name", `{"name":"a","Name":"b"}`},
		{"upper-case untagged name", `{"UNTAGD":1}`},
		{"upper-case nested name", `{"in":{"N":1}}`},
		{"null document", `null`},
		{"null string", `{"name":null}`},
		{"null bool", `{"flag":null}`},
		{"null number", `{"count":null}`},
		{"null object", `{"in":null}`},
		{"null array", `{"arr":null}`},
		{"null inside a pointer", `{"ptr":{"n":null}}`},
		{"null map value", `{"map":{"x":null}}`},
		{"invalid UTF-8", "{\"name\":\"\xff\"}"},
		{"line break in base64", `{"key":"AQ\nI="}`},
		{"carriage return in base64", `{"key":"AQ\r\n=="}`},
		{"lone surrogate", `{"name":"\ud800"}`},
	} {
		for _, d := range decoders {
			t.Run(d.name+"/"+tc.name, func(t *testing.T) {
				var v doc
				if err := d.fn([]byte(tc.in), &v); err == nil {
					t.Fatalf("accepted %q as %+v", tc.in, v)
				}
			})
		}
	}
}

func TestUnmarshalErrors(t *testing.T) {
	for _, d := range decoders {
		for _, tc := range []struct {
			in, want string
			is       error
		}{
			{`{"name":"a"} {}`, "trailing data after the JSON value", ErrTrailing},
			{`{"name":"a"}}`, "trailing data after the JSON value", ErrTrailing},
			{`null`, "null is not allowed here (a JSON object is due)", ErrNull},
			{`{"in":null}`, "in: null is not allowed here (a JSON object is due)", ErrNull},
			{`{"ptr":{"n":null}}`, "ptr.n: null is not allowed here (a number is due)", ErrNull},
			{`{"name":"a","name":"b"}`, `field "name" given twice`, nil},
			{`{"in":{"n":1,"n":2}}`, `field "n" given twice in "in"`, nil},
			{`{"NAME":"a"}`, `unknown field "NAME"`, nil},
			{`{"in":{"N":1}}`, `unknown field "N" in "in"`, nil},
		} {
			var v doc
			err := d.fn([]byte(tc.in), &v)
			if err == nil || err.Error() != tc.want || tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%s: %s: %v, want %q", d.name, tc.in, err, tc.want)
			}
		}
	}
}

func TestUnmarshalAccepts(t *testing.T) {
	// Pointers, slices and maps may be null: encoding/json writes a nil
	// slice or map as null.
	in := ` {"name":"a","list":null,"map":null,"ptr":null,"raw":{"k":null},"key":"AQI=","in":{"n":3},"arr":[1,2],"Untagd":4} `
	want := doc{Name: "a", Raw: map[string][]byte{"k": nil}, Key: []byte{1, 2}, In: inner{N: 3}, Arr: [2]int{1, 2}, Untagd: 4}
	for _, d := range decoders {
		var v doc
		if err := d.fn([]byte(in), &v); err != nil {
			t.Fatalf("%s: %v", d.name, err)
		}
		if !reflect.DeepEqual(v, want) {
			t.Fatalf("%s: got %+v, want %+v", d.name, v, want)
		}
	}
}

// TestTimes: both paths read RFC 3339 times alike, json/v2's stricter
// rules included.
func TestTimes(t *testing.T) {
	type stamped struct {
		T time.Time `json:"t"`
	}
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"2025-06-01T00:00:00Z", true},
		{"2025-06-01T00:00:00.5+01:00", true},
		{"2025-06-01T00:00:00-23:59", true},
		{"2025-06-01T1:00:00Z", false},
		{"2025-06-01T00:00:00,5Z", false},
		{"2025-06-01T00:00:00+24:00", false},
		{"2025-06-01T00:00:00+23:60", false},
		{"2025-06-01t00:00:00z", false},
		{"2025-06-01", false},
	} {
		for _, d := range decoders {
			var v stamped
			err := d.fn([]byte(`{"t":"`+tc.in+`"}`), &v)
			if (err == nil) != tc.ok {
				t.Errorf("%s: %s: %v, want accepted %v", d.name, tc.in, err, tc.ok)
			}
			if want, _ := time.Parse(time.RFC3339Nano, tc.in); err == nil && !v.T.Equal(want) {
				t.Errorf("%s: %s read as %v", d.name, tc.in, v.T)
			}
		}
	}
}

// TestRoundTrip checks that what encoding/json writes, which is how vouch
// writes its documents, decodes back to the same value.
func TestRoundTrip(t *testing.T) {
	for _, v := range []doc{
		{},
		{Name: "x", Flag: true, Count: 7, Key: []byte{0, 255}, List: []string{}, Map: map[string]int{"a": 1, "A": 2}, Ptr: &inner{N: -1, S: "é"}, In: inner{S: "<&>"}, Arr: [2]int{3, 4}, Raw: map[string][]byte{"r": {9}}, Untagd: 1},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range decoders {
			var got doc
			if err := d.fn(b, &got); err != nil {
				t.Fatalf("%s: %s: %v", d.name, b, err)
			}
			if !reflect.DeepEqual(got, v) {
				t.Fatalf("%s: %s decoded to %+v, want %+v", d.name, b, got, v)
			}
		}
	}
}

// FuzzUnmarshal checks that Unmarshal never panics, that whatever it
// accepts, encoded again by encoding/json, is accepted and decodes to a
// value with the same encoding, and that the compact decoder accepts
// exactly what json/v2 accepts, as the same value.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{
		`{"name":"a"}`,
		`{"name":"a","list":null,"map":{"x":1},"ptr":{"n":1},"key":"AQI=","in":{"n":3,"s":"y"},"arr":[1,2],"Untagd":4}`,
		`{"name":"a","name":"b"}`,
		`{"NAME":"a"}`,
		`null`,
		`{"in":null}`,
		`{} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v, c doc
		err, cerr := unmarshalV2(b, &v), unmarshalCompact(b, &c)
		if (err == nil) != (cerr == nil) {
			t.Fatalf("%q: json/v2 says %v, the compact decoder %v", b, err, cerr)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(v, c) {
			t.Fatalf("%q: json/v2 decodes %+v, the compact decoder %+v", b, v, c)
		}
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("accepted %q but cannot encode %+v: %v", b, v, err)
		}
		var w doc
		if err := Unmarshal(again, &w); err != nil {
			t.Fatalf("accepted %q but not its re-encoding %s: %v", b, again, err)
		}
		// omitempty drops an empty map, so compare what the values encode to.
		if third, _ := json.Marshal(w); string(third) != string(again) {
			t.Fatalf("%q decoded to %+v, its re-encoding %s to %+v (%s)", b, v, again, w, third)
		}
	})
}
