package functions

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/internal/harness/testbuild"
)

// TestEmbeddedFunctionsAreReproducible rebuilds every built-in function
// from source with the pinned toolchain and flags and checks that the
// embedded module is exactly what the source builds to.
func TestEmbeddedFunctionsAreReproducible(t *testing.T) {
	for name, b := range builtins {
		built, err := testbuild.Wasm(b.source, true)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(built, b.module) {
			t.Errorf("the embedded %s function (sha256 %x) is not what its source builds to (sha256 %x); run: go generate %s",
				name, sha256.Sum256(b.module), sha256.Sum256(built), b.source)
		}
	}
}

// TestCheckoutsKeepTheEmbeddedBytes: .gitattributes marks every embedded
// module and manifest so that no checkout converts line endings in them,
// which would change the built-ins' checksums.
func TestCheckoutsKeepTheEmbeddedBytes(t *testing.T) {
	root, err := testbuild.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	if err := exec.Command("git", "-C", root, "rev-parse", "--git-dir").Run(); err != nil {
		t.Skip("not a git checkout")
	}
	args := []string{"-C", root, "check-attr", "text", "--"}
	for _, b := range builtins {
		dir := strings.TrimPrefix(b.source, "./")
		args = append(args, dir+"/"+filepath.Base(dir)+".wasm", dir+"/vouch.json")
	}
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2*len(builtins) {
		t.Fatalf("git check-attr: %s", out)
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, ": text: unset") {
			t.Errorf("%s (want text unset: add it to .gitattributes)", l)
		}
	}
}

func TestBuiltin(t *testing.T) {
	b, err := Builtin("leader")
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "leader" || !b.Manifest.AllowPlaintextInput {
		t.Fatalf("manifest = %+v", b.Manifest)
	}
	if _, err := Builtin("nope"); err == nil {
		t.Fatal("unknown built-in accepted")
	}
}

func ExampleBuiltin() {
	b, _ := Builtin("leader")
	fmt.Println(b.Name(), len(b.Checksum()))
	// Output: leader 64
}

var update = flag.Bool("update", false, "rewrite testdata/checksums.txt with the built-ins' current checksums")

// checksumsHeader starts testdata/checksums.txt (docs/FORMATS.md,
// "Built-in functions").
const checksumsHeader = `# The built-in functions' known answers (docs/FORMATS.md, "Built-in functions").
# One line per built-in: its name, its checksum (what vouch checksum --builtin
# prints) and the SHA-256 of its .wasm. A change to this file is a change to
# a built-in: review it as one. Rewrite it with:
#   go test ./functions -run TestBuiltinChecksums -update
`

// TestBuiltinChecksums checks the embedded built-ins against their known
// answers in testdata/checksums.txt, so that no change to a built-in goes
// unnoticed in review.
func TestBuiltinChecksums(t *testing.T) {
	var b strings.Builder
	b.WriteString(checksumsHeader)
	for _, name := range Names() {
		bu, err := Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s %x\n", name, bu.Checksum(), sha256.Sum256(builtins[name].module))
	}
	path := filepath.Join("testdata", "checksums.txt")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("the built-ins differ from %s (if the change is deliberate, run: go test ./functions -run TestBuiltinChecksums -update)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestOneBuildRecipe: every built-in's go:generate line runs the one
// recipe (functions/internal/build, package wasmbuild), which is also what
// TestEmbeddedFunctionsAreReproducible rebuilds with.
func TestOneBuildRecipe(t *testing.T) {
	for name, b := range builtins {
		dir := filepath.Base(b.source)
		src, err := os.ReadFile(filepath.Join(dir, "gen.go"))
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(string(src), "\n") {
			if strings.HasPrefix(l, "//go:generate") {
				lines = append(lines, l)
			}
		}
		want := "//go:generate go run github.com/vouch-dev/vouch/functions/internal/build " + dir + ".wasm"
		if len(lines) != 1 || lines[0] != want {
			t.Errorf("%s: go:generate lines %q, want only %q", name, lines, want)
		}
	}
}

// guestLeaves are the only packages of this module a built-in may import:
// leaves whose content it runs (docs/FORMATS.md, "Built-in functions").
// Importing node-side code would make a node-side edit change a
// built-in's bytes.
var guestLeaves = map[string]bool{
	"github.com/vouch-dev/vouch/guest":               true,
	"github.com/vouch-dev/vouch/election/members":    true,
	"github.com/vouch-dev/vouch/election/outcome":    true,
	"github.com/vouch-dev/vouch/cluster/spec":        true,
	"github.com/vouch-dev/vouch/internal/canon":      true,
	"github.com/vouch-dev/vouch/internal/strictjson": true,
}

// TestBuiltinsImportOnlyLeaves checks every built-in's import set, and
// that no package in it has an init function, whose side effects could
// decide a built-in's bytes.
func TestBuiltinsImportOnlyLeaves(t *testing.T) {
	root, err := testbuild.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range builtins {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Dir}} {{join .GoFiles \",\"}}", b.source)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s: %v", b.source, err)
		}
		self := "github.com/vouch-dev/vouch/" + strings.TrimPrefix(b.source, "./")
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 || !strings.HasPrefix(f[0], "github.com/vouch-dev/vouch/") || f[0] == self {
				continue
			}
			if !guestLeaves[f[0]] {
				t.Errorf("the %s function imports %s, which is not one of its leaf packages", name, f[0])
				continue
			}
			for _, file := range strings.Split(f[2], ",") {
				src, err := os.ReadFile(filepath.Join(f[1], file))
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(src, []byte("\nfunc init()")) {
					t.Errorf("%s/%s, imported by the %s function, has an init function", f[0], file, name)
				}
			}
		}
	}
}
