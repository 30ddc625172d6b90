package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/internal/strictjson"
)

func validBySkip(b []byte) bool {
	i := skipSpace(b, 0)
	end, err := skipValue(b, i, 0)
	return err == nil && skipSpace(b, end) == len(b)
}

func TestSkipValueMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		`{}`, `[]`, `""`, `0`, `-0`, `1.5e-3`, `1E+2`, `true`, `false`, `null`, ` {"a" : [1, {"b":null}], "c":"\u00e9\n\"x\\"} `,
		`{"a":1,}`, `[1,]`, `01`, `1.`, `.5`, `-`, `1e`, `"\x"`, `"\u12"`, "\"a\x01\"", `{"a" 1}`, `{1:2}`, `[1 2]`, `tru`, `nul`, `"abc`, `{"a":1}}`, ``, ` `,
		strings.Repeat("[", 40) + strings.Repeat("]", 40), // deeper than maxDepth: refused (json.Valid takes it)
	} {
		want := json.Valid([]byte(s)) && !strings.HasPrefix(s, strings.Repeat("[", 40))
		if got := validBySkip([]byte(s)); got != want {
			t.Errorf("%q: skipValue says valid=%v, want %v", s, got, want)
		}
	}
}

func TestSplitInput(t *testing.T) {
	for _, tc := range []struct {
		in, config, view, err string
	}{
		{`{"view":{"a":1}}`, "", `{"a":1}`, ""},
		{` {"config" : {"x":[1,2]} , "view":{}} `, `{"x":[1,2]}`, `{}`, ""},
		{`{"config":null,"view":null}`, "", "", ""},
		{`{"view":{},"x":1}`, "", "", "unknown field"},
		{`{"view":{},"view":{}}`, "", "", "twice"},
		{`{"view":{}} {}`, "", "", "after"},
		{`[]`, "", "", "not a JSON object"},
		{`{"view":{]}`, "", "", "invalid"},
	} {
		c, v, err := splitInput([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want an error saying %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || string(c) != tc.config || string(v) != tc.view {
			t.Errorf("%s: config %q view %q err %v", tc.in, c, v, err)
		}
	}
}

func TestReadHeader(t *testing.T) {
	h := newHarness(t, cluster.PolicyHighest, "a", "b")
	raw, _ := json.Marshal(h.cfg)
	got, err := readHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.Config.Cluster != "demo" || got.Config.Version != 1 || string(got.Config.Owner) != string(h.cfg.Config.Owner) || string(got.Signature) != string(h.cfg.Signature) {
		t.Fatalf("%+v", got)
	}
	for _, bad := range []string{`{"config":{"version":-1}}`, `{"config":{"version":1.5}}`, `{"config":{"owner":"!"}}`, `{"config":[]}`, `{"signature":7}`} {
		if _, err := readHeader([]byte(bad)); err == nil {
			t.Errorf("%s: read", bad)
		}
	}
}

// The scanner agrees with encoding/json on what is valid JSON (up to
// maxDepth), and splitInput never panics.
func FuzzSkipValue(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":"c\u0041"}]}`, `-1.5e+3`, `"\\"`, `[`, `{"config":{},"view":{}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if depth(b) < maxDepth {
			if got, want := validBySkip(b), json.Valid(b); got != want {
				t.Fatalf("%q: skipValue valid=%v, json.Valid %v", b, got, want)
			}
		}
		splitInput(b)
		readHeader(b)
	})
}

// depth is an upper bound of b's nesting.
func depth(b []byte) int {
	d, most := 0, 0
	for _, c := range b {
		switch c {
		case '[', '{':
			d++
			most = max(most, d)
		case ']', '}':
			d--
		}
	}
	return most
}

// Whatever a submission holds, handle does not panic, and what it takes
// it answers with a term certificate.
func FuzzHandle(f *testing.F) {
	h := newHarness(&testing.T{}, cluster.PolicyHighest, "a", "b", "c")
	sv, _ := cluster.SignView(cluster.View{Cluster: "demo", Node: "a", Seq: 1, TimeMillis: h.env.t.UnixMilli(), Alive: []string{"a", "b"}}, h.keys["a"])
	good, _ := json.Marshal(Input{Config: h.cfg, View: sv})
	f.Add(good)
	f.Add([]byte(`{"view":{"view":{"cluster":"demo","node":"a","seq":1,"time_ms":1,"alive":["a"],"key":"AA=="},"signature":"AA=="}}`))
	f.Add([]byte(`{"config":{"config":{"cluster":"demo","version":9}},"view":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		env := newEnv()
		env.t = time.UnixMilli(1)
		out, err := env.run(b)
		if err != nil {
			return
		}
		var o election.TermOutcome
		if err := strictjson.Unmarshal(out, &o); err != nil || o.Cluster == "" {
			t.Fatalf("answered %q (%v)", out, err)
		}
	})
}
