package election

import (
	"reflect"
	"testing"

	"github.com/vouch-dev/vouch/internal/strictjson"
)

var outcomeSeeds = []string{
	`{"cluster":"demo","leader":"5002","members":["5000","5001","5002"],"members_digest":"b0b68d797edfd8f4eabb59e224a78aa3866e6fb5075aaafa3f1446faf156a1f8"}`,
	`{"cluster":"d\"e\\mo","leader":"a\\\"b","members":["a\\\"b"],"members_digest":"x"}`,
	`{"cluster":"demo","leader":"1","members":[],"members_digest":""}`,
	`{"cluster":"demo", "leader":"1","members":["1"],"members_digest":""}`,
	`{"leader":"1","cluster":"demo","members":["1"],"members_digest":""}`,
	`{"cluster":"demo","leader":"1","members":["1"],"members_digest":""}x`,
	`{"cluster":"d\u0065mo","leader":"1","members":["1"],"members_digest":""}`,
	`{"cluster":"demo","leader":"1","members":["1",],"members_digest":""}`,
}

func TestParseOutcome(t *testing.T) {
	for _, doc := range outcomeSeeds {
		_, fast := scanOutcome([]byte(doc))
		var want Outcome
		strictErr := strictjson.Unmarshal([]byte(doc), &want)
		got, err := parseOutcome([]byte(doc))
		if (err == nil) != (strictErr == nil) || err == nil && !reflect.DeepEqual(*got, want) {
			t.Errorf("%s: parseOutcome = %+v, %v; strict decoder %+v, %v (fast path %v)", doc, got, err, want, strictErr, fast)
		}
	}
	if _, ok := scanOutcome([]byte(outcomeSeeds[0])); !ok {
		t.Error("the canonical output did not take the fast path")
	}
	o, ok := scanOutcome([]byte(outcomeSeeds[1]))
	if !ok || o.Cluster != `d"e\mo` || o.Leader != `a\"b` {
		t.Errorf("escapes: %+v, %v", o, ok)
	}
}

// FuzzParseOutcome checks that parseOutcome accepts exactly what the
// strict decoder accepts, with the same outcome, and that its scanner
// never accepts what the strict decoder refuses.
func FuzzParseOutcome(f *testing.F) {
	for _, doc := range outcomeSeeds {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want Outcome
		strictErr := strictjson.Unmarshal(b, &want)
		got, err := parseOutcome(b)
		if (err == nil) != (strictErr == nil) {
			t.Fatalf("%q: parseOutcome error %v, strict decoder error %v", b, err, strictErr)
		}
		if err == nil && !reflect.DeepEqual(*got, want) {
			t.Fatalf("%q: parseOutcome %+v, strict decoder %+v", b, *got, want)
		}
		if o, ok := scanOutcome(b); ok && (strictErr != nil || !reflect.DeepEqual(*o, want)) {
			t.Fatalf("%q: scanner %+v, strict decoder %+v, %v", b, *o, want, strictErr)
		}
	})
}
