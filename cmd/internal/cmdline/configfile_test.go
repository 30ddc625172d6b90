package cmdline

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newFlags() (*flag.FlagSet, map[string]*string) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	v := map[string]*string{
		"data":    fs.String("data", "default-data", "the data DIR (env VOUCH_DATA)"),
		"name":    fs.String("name", "default-name", "the name"),
		"profile": fs.String("profile", "local", "timing"),
	}
	fs.Bool("insecure-gossip", false, "no key")
	return fs, v
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vouch.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Flag over environment over file over default.
func TestConfigPrecedence(t *testing.T) {
	path := writeConfig(t, "# a node\n\ndata = /file/data\nname = file-name\n  insecure-gossip = true\n")
	for _, c := range []struct {
		args     []string
		env      string
		data     string
		name     string
		envValue string
	}{
		{nil, "", "/file/data", "file-name", ""},
		{[]string{"-data", "/flag/data"}, "", "/flag/data", "file-name", ""},
		{nil, "/env/data", "default-data", "file-name", "/env/data"}, // the env is the flag's default in the commands; here it only hides the file
		{[]string{"-data", "/flag/data", "-name", "n"}, "/env/data", "/flag/data", "n", ""},
	} {
		fs, v := newFlags()
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		getenv := func(k string) string {
			if k == "VOUCH_DATA" {
				return c.env
			}
			return ""
		}
		if err := ApplyConfig(fs, path, getenv); err != nil {
			t.Fatal(err)
		}
		if *v["data"] != c.data || *v["name"] != c.name || *v["profile"] != "local" || fs.Lookup("insecure-gossip").Value.String() != "true" {
			t.Errorf("args %v env %q: data %q name %q profile %q", c.args, c.env, *v["data"], *v["name"], *v["profile"])
		}
	}
}

func TestConfigRefused(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"data = x\nbogus = 1\n", `line 2: unknown key "bogus"; valid keys: data, insecure-gossip, name, profile`},
		{"config = other\n", `unknown key "config"`},
		{"--data = x\n", "without dashes"},
		{"just words\n", "line 1: want key = value"},
		{"= x\n", "line 1: want key = value"},
		{"insecure-gossip = maybe\n", "line 1: insecure-gossip: parse error"},
	} {
		fs, _ := newFlags()
		fs.Parse(nil)
		err := ApplyConfig(fs, writeConfig(t, c.text), func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.text, err, c.want)
		}
	}
	fs, _ := newFlags()
	if err := ApplyConfig(fs, filepath.Join(t.TempDir(), "none"), os.Getenv); !errors.Is(err, ErrConfig) {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("data = x\n# c\nn = 1\nn = 2\n"))
	f.Add([]byte("=\n-x = y\n\x00 = \xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ss, err := ParseConfig(b)
		if err != nil {
			return
		}
		for _, s := range ss {
			if s.Key == "" || strings.HasPrefix(s.Key, "-") || s.Line < 1 {
				t.Fatalf("bad setting %+v", s)
			}
		}
	})
}
