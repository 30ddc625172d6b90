package bench

import (
	"context"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"time"
)

// Source identifies the code a benchmark ran, so that a figure can be
// traced to a revision.
type Source struct {
	// Revision is the git commit; empty when neither the binary nor the
	// working directory says.
	Revision string `json:"revision,omitempty"`
	// Dirty reports tracked files modified relative to Revision (nil:
	// unknown). Untracked files are not counted.
	Dirty *bool `json:"dirty,omitempty"`
	// CommitTime is the commit's time, when the build info records it.
	CommitTime string `json:"commit_time,omitempty"`
	// From says where the revision came from: "buildinfo" (stamped into
	// the binary by go build), "git" (git in the working directory at run
	// time, for `go test` and builds with -buildvcs=false), or "unknown".
	From string `json:"from"`
	// Dir is the working tree git was asked about (From "git").
	Dir string `json:"dir,omitempty"`
}

// String is "REV", "REV (dirty)" or "unknown revision".
func (s Source) String() string {
	if s.Revision == "" {
		return "unknown revision"
	}
	r := s.Revision
	if len(r) > 12 {
		r = r[:12]
	}
	switch {
	case s.Dirty == nil:
		return r + " (dirty: unknown)"
	case *s.Dirty:
		return r + " (dirty)"
	}
	return r
}

// ThisSource identifies the running code: the VCS settings go build
// stamped into the binary if there are any, else git in the working
// directory. It never fails: without either, From is "unknown".
func ThisSource() Source {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if s, ok := sourceFromBuildInfo(bi.Settings); ok {
			return s
		}
	}
	if s, ok := sourceFromGit(""); ok {
		return s
	}
	return Source{From: "unknown"}
}

func sourceFromBuildInfo(settings []debug.BuildSetting) (Source, bool) {
	s := Source{From: "buildinfo"}
	for _, kv := range settings {
		switch kv.Key {
		case "vcs.revision":
			s.Revision = kv.Value
		case "vcs.modified":
			d := kv.Value == "true"
			s.Dirty = &d
		case "vcs.time":
			s.CommitTime = kv.Value
		}
	}
	return s, s.Revision != ""
}

// sourceFromGit asks git about the working tree holding dir ("" is the
// working directory). It gives up after a few seconds.
func sourceFromGit(dir string) (Source, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_OPTIONAL_LOCKS=0")
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	rev, err := git("rev-parse", "HEAD")
	if err != nil || rev == "" {
		return Source{}, false
	}
	s := Source{From: "git", Revision: rev}
	if top, err := git("rev-parse", "--show-toplevel"); err == nil {
		s.Dir = top
	}
	if st, err := git("status", "--porcelain", "--untracked-files=no"); err == nil {
		d := st != ""
		s.Dirty = &d
	}
	return s, true
}

// LoadAvg returns the 1, 5 and 15 minute load averages from
// /proc/loadavg, or "" where that is not available.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// CommandLine joins args as a shell would need them, quoting those with
// spaces or shell metacharacters, so that a recorded command can be pasted
// back.
func CommandLine(args []string) string {
	var q []string
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$&|;<>*?()`\\#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q = append(q, a)
	}
	return strings.Join(q, " ")
}
