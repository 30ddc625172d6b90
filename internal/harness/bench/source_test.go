package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestSourceFromBuildInfo(t *testing.T) {
	s, ok := sourceFromBuildInfo([]debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}})
	if !ok || s.From != "buildinfo" || s.Revision != "0123456789abcdef0123" || s.Dirty == nil || !*s.Dirty || s.CommitTime != "2026-01-02T03:04:05Z" {
		t.Fatalf("%+v, %v", s, ok)
	}
	if got := s.String(); got != "0123456789ab (dirty)" {
		t.Errorf("String() = %q", got)
	}
	s, ok = sourceFromBuildInfo([]debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}})
	if !ok || s.Dirty == nil || *s.Dirty || s.String() != "abc" {
		t.Fatalf("%+v, %v", s, ok)
	}
	// -buildvcs=false (CI) and go test stamp nothing.
	if _, ok := sourceFromBuildInfo([]debug.BuildSetting{{Key: "-buildmode", Value: "exe"}}); ok {
		t.Fatal("a build without VCS settings gave a revision")
	}
	if got := (Source{From: "unknown"}).String(); got != "unknown revision" {
		t.Errorf("String() = %q", got)
	}
}

// TestSourceFromGit asks the real git about a scratch repository: clean,
// with an untracked file (not dirty), with a modified tracked file
// (dirty), and outside any repository.
func TestSourceFromGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("1"), 0o600); err != nil {
		t.Fatal(err)
	}
	git("add", "f")
	git("commit", "-q", "-m", "one")
	head := git("rev-parse", "HEAD")

	s, ok := sourceFromGit(dir)
	if !ok || s.From != "git" || s.Revision != head || s.Dirty == nil || *s.Dirty {
		t.Fatalf("clean tree: %+v, %v", s, ok)
	}
	os.WriteFile(filepath.Join(dir, "untracked"), []byte("x"), 0o600)
	if s, _ := sourceFromGit(dir); s.Dirty == nil || *s.Dirty {
		t.Fatalf("an untracked file made the tree dirty: %+v", s)
	}
	os.WriteFile(filepath.Join(dir, "f"), []byte("2"), 0o600)
	if s, _ := sourceFromGit(dir); s.Dirty == nil || !*s.Dirty || s.Revision != head {
		t.Fatalf("modified tree: %+v", s)
	}
	if s, ok := sourceFromGit(t.TempDir()); ok {
		t.Fatalf("outside a repository: %+v", s)
	}
}

func TestThisSource(t *testing.T) {
	s := ThisSource()
	if s.From != "buildinfo" && s.From != "git" && s.From != "unknown" {
		t.Fatalf("%+v", s)
	}
	if (s.From == "unknown") != (s.Revision == "") {
		t.Fatalf("%+v", s)
	}
}

func TestCommandLine(t *testing.T) {
	got := CommandLine([]string{"--sizes", "3,5", "--in", "a b.json", "--x", "", "--q", "it's"})
	if want := `--sizes 3,5 --in 'a b.json' --x '' --q 'it'\''s'`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}
