package outcome

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRefusalRoundTrip(t *testing.T) {
	for _, c := range Codes {
		r := Refuse(c, "leader %q of term %d", "5002", 3)
		got, err := ParseRefusal(r.Error())
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if *got != *r {
			t.Fatalf("%s: parsed %+v, want %+v", c, got, r)
		}
	}
}

func TestRefusalKnownAnswer(t *testing.T) {
	r := Refuse(LeaseNotRenewed, "lease not renewed: leader %q of term %d is not alive by a majority of views", "5002", 3)
	const want = `{"code":"lease_not_renewed","message":"lease not renewed: leader \"5002\" of term 3 is not alive by a majority of views"}`
	if got := r.Error(); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// A long message is cut so that the whole refusal survives the runtime's
// 4096-byte limit on error messages, and still parses.
func TestLongRefusalFits(t *testing.T) {
	for _, msg := range []string{strings.Repeat("x", 10000), strings.Repeat("é\"<", 3000)} {
		s := Refuse(ViewRefused, "%s", msg).Error()
		if len(s) > MaxRefusalBytes {
			t.Fatalf("refusal is %d bytes", len(s))
		}
		r, err := ParseRefusal(s)
		if err != nil {
			t.Fatal(err)
		}
		if r.Code != ViewRefused || !strings.HasSuffix(r.Message, "...") || !utf8.ValidString(r.Message) {
			t.Fatalf("cut refusal: %+v", r)
		}
	}
}

func TestParseRefusalIsStrict(t *testing.T) {
	for _, msg := range []string{
		"lease not renewed: leader is not alive by a majority of views",
		`{"code":"lease_not_renewed"}x`,
		`{"code":"lease_not_renewed","message":"m","extra":1}`,
		`{"code":"lease_not_renewed","code":"view_refused","message":"m"}`,
		`{"Code":"lease_not_renewed","message":"m"}`,
		`{"code":"no_such_code","message":"m"}`,
		`{"message":"m"}`,
	} {
		if r, err := ParseRefusal(msg); err == nil {
			t.Errorf("%s: parsed as %+v", msg, r)
		}
	}
}

// Whatever a runtime's error message says, ParseRefusal never panics; a
// refusal it accepts encodes again within MaxRefusalBytes and parses back
// to the same code, and to the same message unless it had to be cut.
func FuzzParseRefusal(f *testing.F) {
	for _, c := range Codes {
		f.Add(Refuse(c, "leader %q of term %d", "5002", 3).Error())
	}
	f.Add(`{"code":"lease_not_renewed","message":"x","code":"view_refused"}`)
	f.Add(`{"CODE":"lease_not_renewed","message":""}`)
	f.Add(`null`)
	f.Add("lease not renewed: leader is not alive by a majority of views")
	f.Fuzz(func(t *testing.T, msg string) {
		r, err := ParseRefusal(msg)
		if err != nil {
			return
		}
		enc := r.Error()
		if len(enc) > MaxRefusalBytes {
			t.Fatalf("%d bytes, more than %d", len(enc), MaxRefusalBytes)
		}
		back, err := ParseRefusal(enc)
		if err != nil {
			t.Fatalf("ParseRefusal(%q): %v", enc, err)
		}
		if back.Code != r.Code {
			t.Fatalf("round trip: code %q, want %q", back.Code, r.Code)
		}
		// Error cuts only a message whose encoding is too long.
		if full, _ := json.Marshal(r); len(full) <= MaxRefusalBytes && back.Message != r.Message {
			t.Fatalf("round trip: message %q, want %q", back.Message, r.Message)
		}
	})
}
