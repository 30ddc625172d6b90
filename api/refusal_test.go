package api

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/guest"
)

// TestRefusalCodesMatchGuest checks that package guest, which Go functions
// use (and which cannot import this package without changing their
// bytes), lists the same codes.
func TestRefusalCodesMatchGuest(t *testing.T) {
	g := []string{guest.MalformedInput, guest.MissingValue, guest.InvalidValue, guest.DuplicateValue, guest.TooManyValues, guest.NotPermitted,
		guest.MalformedSubmission, guest.NoConfiguration, guest.ConfigurationRefused, guest.ViewRefused, guest.LeaseNotRenewed}
	if len(g) != len(RefusalTexts) {
		t.Fatalf("guest lists %d codes, api %d", len(g), len(RefusalTexts))
	}
	for _, c := range g {
		if _, ok := RefusalTexts[c]; !ok {
			t.Errorf("guest code %q is not in RefusalTexts", c)
		}
	}
	r := guest.Refuse(guest.InvalidValue, "x %d", 1)
	if code, detail, ok := ParseRefusal(r.Error()); !ok || code != RefusalInvalidValue || detail != "x 1" {
		t.Errorf("ParseRefusal(%q) = %q, %q, %v", r.Error(), code, detail, ok)
	}
}

func TestParseRefusal(t *testing.T) {
	for _, tc := range []struct {
		msg, code, detail string
		ok                bool
	}{
		{"vouch-refusal:invalid_value: node_list[1]: 1.5 is not a node ID", RefusalInvalidValue, "node_list[1]: 1.5 is not a node ID", true},
		{"vouch-refusal:duplicate_value", RefusalDuplicateValue, "", true},
		{"vouch-refusal:malformed_input:no space", RefusalMalformedInput, "no space", true},
		{"vouch-refusal:secret_code: x", "", "", false}, // unlisted: never passed through
		{"vouch-refusal:", "", "", false},
		{"vouch-refusal:invalid_value ", "", "", false},
		{"invalid_value: x", "", "", false},
		{"", "", "", false},
		{" vouch-refusal:invalid_value", "", "", false},
	} {
		code, detail, ok := ParseRefusal(tc.msg)
		if code != tc.code || detail != tc.detail || ok != tc.ok {
			t.Errorf("ParseRefusal(%q) = %q, %q, %v; want %q, %q, %v", tc.msg, code, detail, ok, tc.code, tc.detail, tc.ok)
		}
	}
}

// FuzzParseRefusal checks that only listed codes come out, and that the
// code is exactly what followed the prefix.
func FuzzParseRefusal(f *testing.F) {
	f.Add("vouch-refusal:invalid_value: x")
	f.Add("vouch-refusal:too_many_values")
	f.Add("vouch-refusal:nope:")
	f.Fuzz(func(t *testing.T, msg string) {
		code, detail, ok := ParseRefusal(msg)
		if !ok {
			if code != "" || detail != "" {
				t.Fatalf("not a refusal, but code %q detail %q", code, detail)
			}
			return
		}
		if _, listed := RefusalTexts[code]; !listed {
			t.Fatalf("unlisted code %q passed", code)
		}
		if !strings.HasPrefix(msg, RefusalPrefix+code) {
			t.Fatalf("code %q is not what %q names", code, msg)
		}
	})
}

// TestRefusalCodesDocumented checks docs/API.md's table of refusal codes
// against RefusalTexts, row for row.
func TestRefusalCodesDocumented(t *testing.T) {
	raw, err := os.ReadFile("../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| ([a-z][^|]*[a-z]) \\|$").FindAllStringSubmatch(string(raw), -1) {
		if _, ok := RefusalTexts[m[1]]; ok {
			rows[m[1]] = m[2]
		}
	}
	for code, text := range RefusalTexts {
		if rows[code] != text {
			t.Errorf("docs/API.md gives refusal %q the text %q; want %q", code, rows[code], text)
		}
	}
}
