package outcome

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vouch-dev/vouch/api"
)

func TestRefusalRoundTrip(t *testing.T) {
	for _, c := range Codes {
		for _, r := range []*Refusal{Refuse(c, "leader %q of term %d", "5002", 3), {Code: c}} {
			got, err := ParseRefusal(r.Error())
			if err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			if *got != *r {
				t.Fatalf("%s: parsed %+v, want %+v", c, got, r)
			}
		}
	}
}

func TestRefusalKnownAnswer(t *testing.T) {
	r := Refuse(LeaseNotRenewed, "lease not renewed: leader %q of term %d is not alive by a majority of views", "5002", 3)
	const want = `vouch-refusal:lease_not_renewed: lease not renewed: leader "5002" of term 3 is not alive by a majority of views`
	if got := r.Error(); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// Every code but StateUnreadable is a public refusal: the runtime reads it
// (api.ParseRefusal) and passes its code to sealed callers. StateUnreadable
// is the function's fault and stays withheld.
func TestPublicCodes(t *testing.T) {
	if Prefix != api.RefusalPrefix {
		t.Fatalf("Prefix %q, api.RefusalPrefix %q", Prefix, api.RefusalPrefix)
	}
	for _, c := range Codes {
		msg := Refuse(c, "x: y").Error()
		code, detail, ok := api.ParseRefusal(msg)
		if public := c != StateUnreadable; ok != public {
			t.Errorf("%s: the runtime takes it for a public refusal: %v, want %v", c, ok, public)
			continue
		}
		if ok && (code != string(c) || detail != "x: y") {
			t.Errorf("%s: the runtime reads code %q, detail %q", c, code, detail)
		}
	}
}

// A long message is cut so that the whole refusal survives the runtime's
// 4096-byte limit on error messages, and still parses.
func TestLongRefusalFits(t *testing.T) {
	for _, msg := range []string{strings.Repeat("x", 10000), strings.Repeat("é\"<", 3000), strings.Repeat("\xffx", 3000)} {
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
		`{"code":"lease_not_renewed","message":"m"}`,
		"vouch-refusal:",
		"vouch-refusal:lease_not_renewed ",
		"vouch-refusal:lease_not_renewed x",
		"vouch-refusal:LEASE_NOT_RENEWED: m",
		"vouch-refusal:no_such_code: m",
		"vouch-refusal:invalid_value: m",
		" vouch-refusal:lease_not_renewed",
		"vouch-refusal:lease_not_renewed: " + strings.Repeat("x", MaxRefusalBytes),
	} {
		if r, err := ParseRefusal(msg); err == nil {
			t.Errorf("%q: parsed as %+v", msg, r)
		}
	}
}

// Whatever a runtime's error message says, ParseRefusal never panics; a
// refusal it accepts encodes again within MaxRefusalBytes and parses back
// to the same code, and to the same message unless it had to be cut or
// made valid UTF-8. The runtime's parser agrees on the code.
func FuzzParseRefusal(f *testing.F) {
	for _, c := range Codes {
		f.Add(Refuse(c, "leader %q of term %d", "5002", 3).Error())
	}
	f.Add("vouch-refusal:lease_not_renewed")
	f.Add("vouch-refusal:view_refused:x")
	f.Add("vouch-refusal:view_refused:  two spaces")
	f.Add(`{"code":"lease_not_renewed","message":"x"}`)
	f.Add("lease not renewed: leader is not alive by a majority of views")
	f.Fuzz(func(t *testing.T, msg string) {
		r, err := ParseRefusal(msg)
		if err != nil {
			return
		}
		if code, _, ok := api.ParseRefusal(msg); ok != (r.Code != StateUnreadable) || ok && code != string(r.Code) {
			t.Fatalf("api.ParseRefusal(%q) = %q, %v; outcome reads %q", msg, code, ok, r.Code)
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
		if utf8.ValidString(r.Message) && len(Prefix)+len(r.Code)+2+len(r.Message) <= MaxRefusalBytes && back.Message != r.Message {
			t.Fatalf("round trip: message %q, want %q", back.Message, r.Message)
		}
	})
}
