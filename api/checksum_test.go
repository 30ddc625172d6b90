package api_test

import (
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/api"
)

func TestNormalizeChecksum(t *testing.T) {
	lower := strings.Repeat("0a", 32)
	for _, tc := range []struct {
		in, want, err string
	}{
		{lower, lower, ""},
		{strings.ToUpper(lower), lower, ""},
		{"0A" + lower[2:], lower, ""},
		{"", "", "is 0 characters"},
		{lower[:63], "", "is 63 characters"},
		{lower + "0", "", "is 65 characters"},
		{strings.Repeat("g", 64), "", `"` + strings.Repeat("g", 64) + `" is not 64 hex digits`},
		{" " + lower[1:], "", "is not 64 hex digits"},
	} {
		got, err := api.NormalizeChecksum(tc.in)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("NormalizeChecksum(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || got != "" || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("NormalizeChecksum(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
		}
	}
}
