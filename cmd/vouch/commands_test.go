package main

// Tests of the command table: help, argument and flag checks, value names,
// version and completion, all through doMain.

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/internal/version"
)

// tableCommand is one command of the table with its path.
type tableCommand struct {
	path []string // such as ["cluster", "add-member"]
	c    *command
}

// allCommands walks the command table.
func allCommands() []tableCommand {
	var out []tableCommand
	var walk func(c *command, path []string)
	walk = func(c *command, path []string) {
		for _, s := range c.subs {
			p := append(append([]string(nil), path...), s.name)
			out = append(out, tableCommand{p, s})
			walk(s, p)
		}
	}
	walk(commandTable(), nil)
	return out
}

// args returns the command's path followed by more arguments.
func (tc tableCommand) args(more ...string) []string {
	return append(append([]string(nil), tc.path...), more...)
}

// Help asked for goes to stdout with exit 0, for every command and
// subcommand, whichever way it is asked for; and it is the same help.
func TestHelpOnStdout(t *testing.T) {
	cleanEnv(t)
	t.Chdir(t.TempDir())
	for _, tc := range allCommands() {
		name := strings.Join(tc.path, " ")
		first := vouch(t, append([]string{"help"}, tc.path...)...)
		if first.code != 0 || first.stderr != "" || !strings.HasPrefix(first.stdout, "Usage: vouch "+name+" ") {
			t.Errorf("want help on stdout, exit 0:\n%s", first)
			continue
		}
		for _, h := range []string{"-h", "--help", "-help"} {
			if r := vouch(t, tc.args(h)...); r.code != 0 || r.stderr != "" || r.stdout != first.stdout {
				t.Errorf("want the help of `vouch help %s`:\n%s", name, r)
			}
		}
		if len(tc.c.subs) > 0 {
			for _, s := range tc.c.subs {
				if !strings.Contains(first.stdout, "\n  "+s.name+" ") {
					t.Errorf("the help of %s does not list %s:\n%s", name, s.name, first.stdout)
				}
			}
		}
	}
	// `vouch help node` is node's help, not vouch's; and it can be piped.
	r := vouch(t, "help", "node")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: vouch node -p PORT") || strings.Contains(r.stdout, "Commands:") ||
		!strings.Contains(r.stdout, "\n  --gossip-key KEY\n") || !strings.Contains(r.stdout, "\n  -fh CHECKSUM\n") {
		t.Errorf("%s", r)
	}
	if r := vouch(t, "node", "-h"); !strings.Contains(r.stdout, "gossip") || r.stderr != "" {
		t.Errorf("`vouch node -h | grep gossip` finds nothing:\n%s", r)
	}
	// A group lists its subcommands; `help` inside a group works too.
	for _, args := range [][]string{{"cluster", "-h"}, {"cluster", "help"}, {"help", "cluster"}} {
		r := vouch(t, args...)
		if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "\n  add-member     add a member") {
			t.Errorf("%s", r)
		}
	}
	if r := vouch(t, "cluster", "help", "add-member"); r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: vouch cluster add-member ") {
		t.Errorf("%s", r)
	}
	// The benchmarks are not in the trusted binary.
	if r := vouch(t, "help", "bench"); r.code != 2 || r.stdout != "" {
		t.Errorf("%s", r)
	}
}

// Misuse goes to stderr with exit 2, and nothing to stdout.
func TestMisuseOnStderr(t *testing.T) {
	cleanEnv(t)
	t.Chdir(t.TempDir())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Usage: vouch <command>"},
		{[]string{"help", "nosuch"}, `vouch: error: no command "nosuch"`},
		{[]string{"help", "cluster", "nosuch"}, `vouch: error: no command "cluster nosuch": ` + "`vouch cluster` has init, add-member"},
		{[]string{"help", "node", "id", "extra"}, "help takes a command and at most one subcommand"},
		{[]string{"cluster"}, "cluster needs a subcommand: init, add-member, remove-member, set or show"},
		{[]string{"cluster", "bogus"}, `unknown cluster subcommand "bogus"`},
		{[]string{"node", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"node", "id", "--bogus"}, "vouch: hint: see `vouch node id -h`"},
		{[]string{"cluster", "add-member", "--lease", "2s"}, "flag provided but not defined: -lease"},
		{[]string{"cluster", "add-member", "--policy", "lowest"}, "flag provided but not defined: -policy"},
		{[]string{"cluster", "show", "--id", "a"}, "flag provided but not defined: -id"},
		{[]string{"cluster", "init", "--key", "k"}, "flag provided but not defined: -key"},
		{[]string{"version", "--bogus"}, "vouch: hint: see `vouch version -h`"},
	} {
		r := vouch(t, tc.args...)
		if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("want exit 2, nothing on stdout and %q on stderr:\n%s", tc.want, r)
		}
	}
}

// Each subcommand has its own flags: add-member's help does not offer
// set's --lease and --policy.
func TestSubcommandsHaveTheirOwnFlags(t *testing.T) {
	cleanEnv(t)
	for _, tc := range []struct {
		cmd      []string
		has, not []string
	}{
		{[]string{"cluster", "add-member"}, []string{"--id ID", "--key KEY", "--node-data DIR", "--stake N", "--config FILE", "--owner-key FILE"}, []string{"--lease", "--policy", "--view-ttl", "--open", "-o "}},
		{[]string{"cluster", "remove-member"}, []string{"--id ID"}, []string{"--key", "--lease", "--policy", "--stake"}},
		{[]string{"cluster", "set"}, []string{"--lease DURATION", "--policy POLICY", "--open true|false"}, []string{"--id", "--key", "--stake", "--node-data"}},
		{[]string{"cluster", "show"}, []string{"--config FILE", "-o FORMAT"}, []string{"--owner-key", "--id"}},
		{[]string{"node", "id"}, []string{"--data DIR"}, []string{"--gossip-key", "-p "}},
		{[]string{"token", "revoke"}, []string{"--ref FILE", "--owner-token-file FILE"}, []string{"--expiry", "--function-checksum"}},
	} {
		r := vouch(t, append(tc.cmd, "-h")...)
		for _, h := range tc.has {
			if !strings.Contains(r.stdout, "\n  "+h+"\n") {
				t.Errorf("the help of %s lacks %q:\n%s", tc.cmd, h, r.stdout)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(r.stdout, "\n  "+n) {
				t.Errorf("the help of %s offers %q:\n%s", tc.cmd, n, r.stdout)
			}
		}
	}
}

// No command ignores arguments it does not take: four stray words are a
// usage error everywhere, before anything runs.
func TestStrayArgumentsRefused(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	t.Chdir(dir)
	for _, tc := range allCommands() {
		r := vouch(t, tc.args("stray1", "stray2", "stray3", "stray4")...)
		if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "vouch: error: ") || !strings.Contains(r.stderr, "vouch: hint: ") {
			t.Errorf("want a usage error:\n%s", r)
		}
	}
	for _, args := range [][]string{
		{"cluster", "show", "-o", "yaml", "stray"},
		{"cluster", "show", "stray"},
		{"cluster", "init", "--name", "x", "stray"},
		{"cluster", "set", "--lease", "2s", "stray"},
		{"version", "extra"},
		{"demo", "extra"},
		{"node", "id", "--data", dir, "extra"},
		{"completion", "bash", "zsh"},
	} {
		if r := vouch(t, args...); r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "vouch: error: ") {
			t.Errorf("want a usage error:\n%s", r)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a refused command wrote %v", ents)
	}
}

// Every -o is refused outside the formats its command states; the one -o
// that is not a format (cluster init's output file) says so.
func TestOutputFormatsRefused(t *testing.T) {
	cleanEnv(t)
	t.Chdir(t.TempDir())
	n := 0
	for _, tc := range allCommands() {
		if tc.c.flags == nil {
			continue
		}
		fs, _ := tc.c.flagSet(strings.Join(tc.path, " "), io.Discard)
		fl := fs.Lookup("o")
		if fl == nil {
			continue
		}
		fmts := formats(fs)
		if fmts == nil {
			if name, _ := flag.UnquoteUsage(fl); name != "FILE" {
				t.Errorf("%s: -o is neither a format nor a FILE", tc.path)
			}
			continue
		}
		n++
		if r := vouch(t, tc.args("-o", "yaml")...); r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, `-o "yaml": want `+orList(fmts)) {
			t.Errorf("want -o yaml refused:\n%s", r)
		}
		if r := vouch(t, tc.args("-h")...); !strings.Contains(r.stdout, "output FORMAT: "+orList(fmts)) {
			t.Errorf("the help of %s does not state its formats:\n%s", tc.path, r.stdout)
		}
	}
	if n < 7 { // deploy, run, list, token, attest, cluster show, version
		t.Errorf("only %d commands with -o formats", n)
	}
}

// Value names are written deliberately: a flag that takes a value names it
// in capitals (back-quoted in its usage, once); a boolean flag has none,
// and no back-quoted command in a usage turns into a value name.
func TestFlagValueNames(t *testing.T) {
	valueName := regexp.MustCompile(`^[A-Z][A-Z0-9_:]*$|^[a-z]+(\|[a-z]+)+$`)
	for _, tc := range allCommands() {
		if tc.c.flags == nil {
			continue
		}
		fs, _ := tc.c.flagSet(strings.Join(tc.path, " "), io.Discard)
		fs.VisitAll(func(f *flag.Flag) {
			name, _ := flag.UnquoteUsage(f)
			ticks := strings.Count(f.Usage, "`")
			switch {
			case isBoolFlag(f) && ticks != 0:
				t.Errorf("%s -%s: a boolean flag with a back-quoted word in its usage: %q", tc.path, f.Name, f.Usage)
			case !isBoolFlag(f) && (ticks != 2 || !valueName.MatchString(name)):
				t.Errorf("%s -%s: value name %q; want one back-quoted name in capitals: %q", tc.path, f.Name, name, f.Usage)
			}
		})
	}
	// As the user sees them.
	r := vouch(t, "run", "-h")
	for _, want := range []string{"\n  --root-fingerprint HEX\n", "\n  --single-shot\n", "\n  --ref FILE\n", "\n  --token TOKEN\n", "\n  -o FORMAT\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("`vouch run -h` lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "vouch attest\n") || strings.Contains(r.stdout, "`") {
		t.Errorf("garbled value names:\n%s", r.stdout)
	}
}

// `cluster set` with nothing to change refuses, and leaves the file (and
// its version) alone.
func TestClusterSetNothingToDo(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	cfg, key := filepath.Join(dir, "cluster.json"), filepath.Join(dir, "owner.pem")
	if r := vouch(t, "cluster", "init", "--name", "demo", "--open", "--owner-key", key, "-o", cfg); r.code != 0 {
		t.Fatalf("%s", r)
	}
	before, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	edit := []string{"--config", cfg, "--owner-key", key}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "cluster set has nothing to do: give --policy, --lease, --view-ttl or --open"},
		{[]string{"--policy", "highest"}, 1, "nothing to change: " + cfg + " already has these settings (version 1)"},
		{[]string{"--open", "true", "--lease", cluster.DefaultLease.String()}, 1, "nothing to change"},
		{[]string{"--open", "maybe"}, 2, "--open takes true or false"},
	} {
		r := vouch(t, append(append([]string{"cluster", "set"}, tc.args...), edit...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, "vouch: error: "+tc.want) {
			t.Errorf("want exit %d and %q:\n%s", tc.code, tc.want, r)
		}
		if after, _ := os.ReadFile(cfg); !bytes.Equal(after, before) {
			t.Fatalf("cluster set %v changed the configuration", tc.args)
		}
	}
	r := vouch(t, append([]string{"cluster", "set", "--policy", "lowest"}, edit...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "version 2") {
		t.Fatalf("%s", r)
	}
	r = vouch(t, "cluster", "show", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "version 2") || !strings.Contains(r.stdout, "policy   lowest") {
		t.Fatalf("%s", r)
	}
}

func TestVersionCommand(t *testing.T) {
	cleanEnv(t)
	r := vouch(t, "version")
	if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "vouch "+version.Version+"\n  commit  ") || !strings.HasSuffix(r.stdout, "\n  go      "+runtime.Version()+"\n") {
		t.Fatalf("%s", r)
	}
	for _, args := range [][]string{{"--version"}, {"-version"}} {
		if v := vouch(t, args...); v.code != 0 || v.stdout != r.stdout {
			t.Errorf("want the output of `vouch version`:\n%s", v)
		}
	}
	for _, args := range [][]string{{"version", "-o", "json"}, {"--version", "-o", "json"}} {
		j := vouch(t, args...)
		var d map[string]any
		if j.code != 0 || json.Unmarshal([]byte(j.stdout), &d) != nil || d["version"] != version.Version || d["go"] != runtime.Version() {
			t.Errorf("%s", j)
		}
		for _, k := range []string{"commit", "modified"} {
			if _, ok := d[k]; !ok {
				t.Errorf("no %q in %s", k, j.stdout)
			}
		}
	}
	for _, args := range [][]string{{"version", "extra"}, {"version", "-o", "yaml"}, {"--version", "extra"}} {
		if v := vouch(t, args...); v.code != 2 || v.stdout != "" {
			t.Errorf("want a usage error:\n%s", v)
		}
	}
}

// describeBuild reads the VCS stamp when there is one, and says the commit
// is unknown when there is none (-buildvcs=false, as CI builds).
func TestDescribeBuild(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.99.1", Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}, {Key: "vcs.modified", Value: "true"},
	}}
	d := describeBuild(stamped, true)
	if want := "vouch " + version.Version + "\n  commit  0123456789abcdef0123456789abcdef01234567 (modified: built with uncommitted changes)\n  go      go1.99.1\n"; d.String() != want {
		t.Errorf("got\n%s\nwant\n%s", d, want)
	}
	b, _ := json.Marshal(d)
	if want := `{"version":"` + version.Version + `","commit":"0123456789abcdef0123456789abcdef01234567","modified":true,"go":"go1.99.1"}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
	stamped.Settings[2].Value = "false"
	if d := describeBuild(stamped, true); strings.Contains(d.String(), "modified") {
		t.Errorf("a clean build says modified:\n%s", d)
	}
	for _, d := range []buildDescription{describeBuild(&debug.BuildInfo{GoVersion: "go1.99.1"}, true), describeBuild(nil, false)} {
		if !strings.Contains(d.String(), "\n  commit  unknown (") {
			t.Errorf("want the commit unknown:\n%s", d)
		}
		b, _ := json.Marshal(d)
		if !strings.Contains(string(b), `"commit":null,"modified":null`) {
			t.Errorf("%s", b)
		}
	}
}

// The completion scripts come from the table: each mentions every command,
// subcommand and flag; the bash one parses, and completes.
func TestCompletion(t *testing.T) {
	cleanEnv(t)
	scripts := map[string]string{}
	for _, sh := range shells {
		r := vouch(t, "completion", sh)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%s", r)
		}
		scripts[sh] = r.stdout
		for _, tc := range allCommands() {
			if !strings.Contains(r.stdout, "vouch/"+strings.Join(tc.path, "/")) {
				t.Errorf("the %s script does not know `vouch %s`", sh, strings.Join(tc.path, " "))
			}
			if tc.c.flags == nil {
				continue
			}
			fs, _ := tc.c.flagSet("", io.Discard)
			fs.VisitAll(func(f *flag.Flag) {
				if !strings.Contains(r.stdout, f.Name) {
					t.Errorf("the %s script lacks %s's -%s", sh, tc.path, f.Name)
				}
			})
		}
	}
	for _, args := range [][]string{{"completion"}, {"completion", "powershell"}} {
		if r := vouch(t, args...); r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "bash, zsh or fish") {
			t.Errorf("%s", r)
		}
	}

	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash is needed to check the bash completion script: %v", err)
	}
	file := filepath.Join(t.TempDir(), "vouch.bash")
	if err := os.WriteFile(file, []byte(scripts["bash"]), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bash, "-n", file).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	// What the script offers after each line (the last word is the one
	// being completed).
	for _, tc := range []struct {
		line     string
		has, not []string
	}{
		{"vouch clu", []string{"cluster"}, []string{"run"}},
		{"vouch ", []string{"enclave", "node", "cluster", "completion", "version"}, nil},
		{"vouch cluster add", []string{"add-member"}, []string{"remove-member"}},
		{"vouch cluster add-member --", []string{"--node-data", "--key", "--owner-key", "--help"}, []string{"--lease", "--policy"}},
		{"vouch cluster show -o ", []string{"text", "json"}, nil},
		{"vouch node --gossip-key-f", []string{"--gossip-key-file"}, nil},
		{"vouch node -f", []string{"-f", "-fh"}, nil},
		{"vouch node ", []string{"id"}, nil},
		{"vouch token ", []string{"revoke"}, nil},
		{"vouch completion ", []string{"bash", "zsh", "fish"}, nil},
		{"vouch help cl", []string{"cluster"}, nil},
		{"vouch --v", []string{"--version"}, nil},
		{"vouch run --pcr 0:ab --sin", []string{"--single-shot"}, nil},
	} {
		words := strings.Split(tc.line, " ")
		prog := "source " + file + "\nCOMP_WORDS=(" + shellWords(words) + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n_vouch\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		out, err := exec.Command(bash, "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", tc.line, err, out)
		}
		got := strings.Fields(string(out))
		for _, h := range tc.has {
			if !slices.Contains(got, h) {
				t.Errorf("%q completes to %q, without %q", tc.line, got, h)
			}
		}
		for _, n := range tc.not {
			if slices.Contains(got, n) {
				t.Errorf("%q completes to %q, with %q", tc.line, got, n)
			}
		}
	}
}

func shellWords(words []string) string {
	var q []string
	for _, w := range words {
		q = append(q, "'"+w+"'")
	}
	return strings.Join(q, " ")
}
