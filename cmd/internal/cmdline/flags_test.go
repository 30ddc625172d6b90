package cmdline

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParseTerminator(t *testing.T) {
	for _, tc := range []struct {
		args, pos []string
		name      string
	}{
		{[]string{"--exec", "--", "sh", "-c", "x"}, []string{"sh", "-c", "x"}, ""},
		{[]string{"a", "--", "-p", "1"}, []string{"a", "-p", "1"}, ""},
		{[]string{"-name", "--", "b"}, []string{"b"}, "--"},
		{[]string{"-p", "1", "x", "-name", "n"}, []string{"x"}, "n"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Bool("exec", false, "")
		fs.Int("p", 0, "")
		name := fs.String("name", "", "")
		pos, err := Parse(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.pos) || *name != tc.name {
			t.Errorf("%q: pos %q name %q err %v; want %q %q", tc.args, pos, *name, err, tc.pos, tc.name)
		}
	}
}
