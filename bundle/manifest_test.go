package bundle_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/bundle"
)

func TestParseManifest(t *testing.T) {
	for _, tc := range []struct {
		json string
		want bundle.Manifest
	}{
		{`{}`, bundle.Manifest{}},
		{" \n{ }\n\t ", bundle.Manifest{}},
		{`{"name":"leader"}`, bundle.Manifest{Name: "leader"}},
		{`{"name":""}`, bundle.Manifest{}},
		{`{"name":"` + strings.Repeat("a", 64) + `"}`, bundle.Manifest{Name: strings.Repeat("a", 64)}},
		{`{"name":"A.b_c-9"}`, bundle.Manifest{Name: "A.b_c-9"}},
		{`{"allow_plaintext_input":true}`, bundle.Manifest{AllowPlaintextInput: true}},
		{`{"limits":{}}`, bundle.Manifest{}},
		{`{"limits":{"timeout":"1ms"}}`, bundle.Manifest{Limits: bundle.Limits{Timeout: bundle.Duration(time.Millisecond)}}},
		{`{"limits":{"timeout":"0s"}}`, bundle.Manifest{}},
		{`{"limits":{"timeout":"5m"}}`, bundle.Manifest{Limits: bundle.Limits{Timeout: bundle.MaxLimits.Timeout}}},
		{`{"limits":{"timeout":"1m30s"}}`, bundle.Manifest{Limits: bundle.Limits{Timeout: bundle.Duration(90 * time.Second)}}},
		{`{
		  "name": "leader",
		  "allow_plaintext_input": true,
		  "limits": {"timeout": "5s", "memory_mib": 64, "max_input_bytes": 1048576,
		             "max_output_bytes": 1048576, "max_log_bytes": 65536}
		}`, bundle.Manifest{Name: "leader", AllowPlaintextInput: true, Limits: bundle.DefaultLimits}},
		{`{"limits":{"timeout":"5m","memory_mib":4096,"max_input_bytes":67108864,"max_output_bytes":67108864,"max_log_bytes":1048576}}`,
			bundle.Manifest{Limits: bundle.MaxLimits}},
	} {
		m, err := bundle.ParseManifest([]byte(tc.json))
		if err != nil {
			t.Errorf("ParseManifest(%s): %v", tc.json, err)
			continue
		}
		if *m != tc.want {
			t.Errorf("ParseManifest(%s) = %+v, want %+v", tc.json, *m, tc.want)
		}
	}
}

func TestParseManifestRefuses(t *testing.T) {
	over := func(field string, v any) string { return fmt.Sprintf(`{"limits":{%q:%v}}`, field, v) }
	for _, tc := range []struct {
		json string
		want string
	}{
		// Not one JSON object.
		{``, "end of data"},
		{`null`, "null is not allowed"},
		{`{`, "unexpected EOF"},
		{`[]`, "cannot unmarshal array"},
		{`"leader"`, "cannot unmarshal string"},
		{`{} {}`, "trailing data"},
		{`{}x`, "trailing data"},
		{`{"name":"a"}{"name":"b"}`, "trailing data"},
		// Unknown fields, wherever they are.
		{`{"nmae":"x"}`, `unknown field "nmae"`},
		{`{"limits":{"timeout":"1s","memory":64}}`, `unknown field "memory"`},
		{`{"name":"x","env":{}}`, `unknown field "env"`},
		// A field given twice, or a name in another case: a reviewer
		// could read one value and the runtime another.
		{`{"allow_plaintext_input": false, "allow_plaintext_input": true}`, `field "allow_plaintext_input" given twice`},
		{`{"name":"a","n\u0061me":"b"}`, `field "name" given twice`},
		{`{"limits":{"timeout":"1s","timeout":"5m"}}`, `field "timeout" given twice in "limits"`},
		{`{"ALLOW_PLAINTEXT_INPUT": true}`, `unknown field "ALLOW_PLAINTEXT_INPUT"`},
		{`{"Limits": {"TIMEOUT": "300ms"}}`, `unknown field "Limits"`},
		{`{"limits": {"TIMEOUT": "300ms"}}`, `unknown field "TIMEOUT" in "limits"`},
		{`{"allow_plaintext_input": false, "Allow_Plaintext_Input": true}`, `unknown field "Allow_Plaintext_Input"`},
		// null where the manifest has no null.
		{`{"name":null}`, "name: null is not allowed"},
		{`{"allow_plaintext_input":null}`, "allow_plaintext_input: null is not allowed"},
		{`{"limits":null}`, "limits: null is not allowed"},
		// Wrong types.
		{`{"name":5}`, "name"},
		{`{"allow_plaintext_input":"yes"}`, "allow_plaintext_input"},
		{`{"limits":[]}`, "limits"},
		{`{"limits":{"memory_mib":-1}}`, "memory_mib"},
		{`{"limits":{"memory_mib":1.5}}`, "memory_mib"},
		{`{"limits":{"max_input_bytes":"1MiB"}}`, "max_input_bytes"},
		// Durations.
		{`{"limits":{"timeout":5}}`, `duration must be a string such as "5s"`},
		{`{"limits":{"timeout":"5"}}`, "missing unit"},
		{`{"limits":{"timeout":"fast"}}`, "invalid duration"},
		{`{"limits":{"timeout":""}}`, "invalid duration"},
		{`{"limits":{"timeout":null}}`, "limits.timeout: null is not allowed"},
		{`{"limits":{"timeout":"-1s"}}`, "limits.timeout -1s is outside 0..5m0s"},
		{`{"limits":{"timeout":"5m0.001s"}}`, "limits.timeout 5m0.001s is outside"},
		{`{"limits":{"timeout":"999us"}}`, "shorter than 1ms"},
		{`{"limits":{"timeout":"1ns"}}`, "shorter than 1ms"},
		{`{"limits":{"timeout":"9999999999h"}}`, "invalid duration"},
		// Limits over their maxima, or negative.
		{over("memory_mib", 4097), "limits.memory_mib 4097 is more than 4096"},
		{over("memory_mib", 1<<32), "memory_mib"},
		{over("max_input_bytes", 64<<20+1), "limits.max_input_bytes 67108865 is outside 0..67108864"},
		{over("max_input_bytes", -1), "limits.max_input_bytes -1"},
		{over("max_output_bytes", 64<<20+1), "limits.max_output_bytes"},
		{over("max_output_bytes", -5), "limits.max_output_bytes"},
		{over("max_log_bytes", 1<<20+1), "limits.max_log_bytes 1048577"},
		{over("max_log_bytes", -1), "limits.max_log_bytes"},
		// Names.
		{`{"name":"has space"}`, "name"},
		{`{"name":"` + strings.Repeat("a", 65) + `"}`, "1-64 characters"},
		{`{"name":"a/b"}`, "name"},
		{`{"name":"ünïcode"}`, "name"},
		{`{"name":"new\nline"}`, "name"},
		{`{"name":"x\u0000"}`, "name"},
	} {
		m, err := bundle.ParseManifest([]byte(tc.json))
		if !errors.Is(err, bundle.ErrInvalid) || !errors.Is(err, bundle.ErrManifest) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), bundle.ManifestFile) {
			t.Errorf("ParseManifest(%s) = %+v, %v; want an ErrInvalid and ErrManifest naming vouch.json and mentioning %q", tc.json, m, err, tc.want)
		}
	}
}

// TestParseManifestTrailingBrackets: a manifest followed by a stray closing
// bracket is trailing data like any other.
func TestParseManifestTrailingBrackets(t *testing.T) {
	for _, s := range []string{`{}}`, `{}]`, `{"name":"x"} ]`} {
		if _, err := bundle.ParseManifest([]byte(s)); err == nil {
			t.Errorf("ParseManifest(%s) accepted trailing data", s)
		}
	}
}

// TestManifestJSONRoundTrip: a manifest marshals to JSON that parses back
// to the same manifest.
func TestManifestJSONRoundTrip(t *testing.T) {
	m := bundle.Manifest{Name: "n", AllowPlaintextInput: true, Limits: bundle.Limits{Timeout: bundle.Duration(1500 * time.Millisecond), MemoryMiB: 1, MaxLogBytes: 7}}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"name":"n","allow_plaintext_input":true,"limits":{"timeout":"1.5s","memory_mib":1,"max_log_bytes":7}}` {
		t.Fatalf("marshalled as %s", b)
	}
	back, err := bundle.ParseManifest(b)
	if err != nil || *back != m {
		t.Fatalf("ParseManifest(%s) = %+v, %v", b, back, err)
	}
	if b, _ := json.Marshal(bundle.Manifest{}); string(b) != `{}` {
		t.Fatalf("zero manifest marshals as %s", b)
	}
}

func TestLimitsResolve(t *testing.T) {
	if got := (bundle.Limits{}).Resolve(bundle.DefaultLimits); got != bundle.DefaultLimits {
		t.Fatalf("zero limits resolve to %+v", got)
	}
	l := bundle.Limits{Timeout: bundle.Duration(time.Second), MaxOutputBytes: 10}
	got := l.Resolve(bundle.DefaultLimits)
	want := bundle.DefaultLimits
	want.Timeout, want.MaxOutputBytes = l.Timeout, 10
	if got != want {
		t.Fatalf("Resolve = %+v, want %+v", got, want)
	}
	if got := bundle.MaxLimits.Resolve(bundle.DefaultLimits); got != bundle.MaxLimits {
		t.Fatalf("full limits changed: %+v", got)
	}
}

func TestValidName(t *testing.T) {
	for s, want := range map[string]bool{
		"leader": true, "a": true, "A-Z.a_z-0.9": true, strings.Repeat("x", 64): true,
		"": false, strings.Repeat("x", 65): false, "a b": false, "a/b": false, "é": false, "a\n": false, "a:b": false,
	} {
		if bundle.ValidName(s) != want {
			t.Errorf("ValidName(%q) = %v", s, !want)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"name":"leader","allow_plaintext_input":true,"limits":{"timeout":"2s","memory_mib":64}}`,
		`{"limits":{"timeout":"1h"}}`, `{"limits":{"max_log_bytes":1048576}}`, `[]`, `null`, `{"NAME":"x"}`,
		`{"limits":{"timeout":"1.000000001s"}}`, `{"name":"a"} `, `{"a":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := bundle.ParseManifest(data)
		if err != nil {
			if !errors.Is(err, bundle.ErrInvalid) || m != nil {
				t.Fatalf("ParseManifest = %v, %v", m, err)
			}
			return
		}
		// What is accepted is within bounds ...
		l := m.Limits
		if l.Timeout < 0 || l.Timeout > bundle.MaxLimits.Timeout || (l.Timeout != 0 && l.Timeout < bundle.Duration(time.Millisecond)) ||
			l.MemoryMiB > bundle.MaxLimits.MemoryMiB || l.MaxInputBytes < 0 || l.MaxInputBytes > bundle.MaxLimits.MaxInputBytes ||
			l.MaxOutputBytes < 0 || l.MaxOutputBytes > bundle.MaxLimits.MaxOutputBytes || l.MaxLogBytes < 0 || l.MaxLogBytes > bundle.MaxLimits.MaxLogBytes {
			t.Fatalf("accepted out-of-bounds limits %+v", l)
		}
		if m.Name != "" && !bundle.ValidName(m.Name) {
			t.Fatalf("accepted name %q", m.Name)
		}
		// ... and survives a JSON round trip unchanged.
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := bundle.ParseManifest(b)
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("%s → %+v → %s → %+v, %v", data, m, b, back, err)
		}
	})
}
