package cmdline

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// A config file holds one `key = value` setting a line, the key a flag's
// name without dashes; blank lines and lines starting with # are ignored.
// A key may repeat where its flag may (-n, --meta). Values are taken
// verbatim after trimming spaces; there is no quoting.

// Setting is one line of a config file.
type Setting struct {
	Key, Value string
	Line       int
}

// maxConfigSize bounds a config file: it holds flags, not data.
const maxConfigSize = 1 << 20

// ParseConfig parses a config file's bytes. It checks the syntax only;
// ApplyConfig checks the keys against a command's flags.
func ParseConfig(data []byte) ([]Setting, error) {
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("config file is %d bytes, more than the %d a config file may have", len(data), maxConfigSize)
	}
	var out []Setting
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxConfigSize)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: want key = value", n)
		}
		if strings.HasPrefix(k, "-") || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("line %d: key %q: write a flag's name without dashes, such as data", n, clipKey(k))
		}
		out = append(out, Setting{Key: k, Value: v, Line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return out, nil
}

// envName finds the environment variables a flag's usage names, such as
// "(env VOUCH_DATA)": they take precedence over the file.
var envName = regexp.MustCompile(`VOUCH_[A-Z0-9_]+`)

// ErrConfig marks a config file that a command refuses.
var ErrConfig = errors.New("config file")

// ApplyConfig sets fs's flags from the config file at path, after the
// command line was parsed, so that the precedence is flag, environment,
// file, default: a key is skipped when its flag was given, or when an
// environment variable its usage names is set (getenv). An unknown key,
// or the key "config" itself, is an error that names the valid keys.
func ApplyConfig(fs *flag.FlagSet, path string, getenv func(string) string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	settings, err := ParseConfig(data)
	if err != nil {
		return fmt.Errorf("%w %s: %v", ErrConfig, path, err)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range settings {
		f := fs.Lookup(s.Key)
		if f == nil || s.Key == "config" {
			return &UsageError{fmt.Sprintf("config file %s, line %d: unknown key %q; valid keys: %s", path, s.Line, clipKey(s.Key), strings.Join(configKeys(fs), ", "))}
		}
		if given[s.Key] || envSet(f.Usage, getenv) {
			continue
		}
		if err := fs.Set(s.Key, s.Value); err != nil {
			return &UsageError{fmt.Sprintf("config file %s, line %d: %s: %v", path, s.Line, s.Key, err)}
		}
	}
	return nil
}

func envSet(usage string, getenv func(string) string) bool {
	for _, name := range envName.FindAllString(usage, -1) {
		if strings.TrimSpace(getenv(name)) != "" {
			return true
		}
	}
	return false
}

// configKeys lists the keys a config file for fs may hold.
func configKeys(fs *flag.FlagSet) []string {
	var keys []string
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "config" {
			keys = append(keys, f.Name)
		}
	})
	slices.Sort(keys)
	return keys
}

func clipKey(k string) string {
	if len(k) > 64 {
		return k[:64] + "…"
	}
	return k
}
