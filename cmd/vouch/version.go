package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/internal/version"
)

// buildDescription says what a binary was built from: the release, the
// commit (from the VCS stamp Go writes into binaries built in a checkout)
// and the Go version.
type buildDescription struct {
	Version string `json:"version"`
	// Commit and Modified are null when the binary carries no VCS stamp
	// (built with -buildvcs=false, or outside a checkout).
	Commit   *string `json:"commit"`
	Modified *bool   `json:"modified"`
	Go       string  `json:"go"`
}

// describeBuild describes the build from what debug.ReadBuildInfo returns.
func describeBuild(info *debug.BuildInfo, ok bool) buildDescription {
	d := buildDescription{Version: version.Version, Go: runtime.Version()}
	if !ok || info == nil {
		return d
	}
	if info.GoVersion != "" {
		d.Go = info.GoVersion
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			d.Commit = &s.Value
		case "vcs.modified":
			m := s.Value == "true"
			d.Modified = &m
		}
	}
	return d
}

func (d buildDescription) String() string {
	commit := "unknown (the binary carries no VCS information: built with -buildvcs=false or outside a checkout)"
	if d.Commit != nil {
		commit = *d.Commit
		if d.Modified != nil && *d.Modified {
			commit += " (modified: built with uncommitted changes)"
		}
	}
	return fmt.Sprintf("vouch %s\n  commit  %s\n  go      %s\n", d.Version, commit, d.Go)
}

func versionFlags(fs *flag.FlagSet) runFunc {
	out := formatFlag(fs, "json prints {\"version\", \"commit\", \"modified\", \"go\"}", "text", "json")
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		d := describeBuild(debug.ReadBuildInfo())
		if *out == "json" {
			return json.NewEncoder(u.Out).Encode(d)
		}
		_, err := fmt.Fprint(u.Out, d)
		return err
	}
}
