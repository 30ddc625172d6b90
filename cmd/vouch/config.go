package main

import (
	"flag"
	"os"
	"strings"

	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
)

// configurable lists the commands that take --config FILE: the long-running
// ones, whose flags an operator keeps in a file.
var configurable = map[string]bool{"node": true, "lock": true, "enclave": true}

// configFlag registers --config on the commands that take one; nil for the
// others.
func configFlag(fs *flag.FlagSet, path string) *string {
	if !configurable[path] {
		return nil
	}
	return fs.String("config", "", "read flags from `FILE`: one `key = value` a line, the key a flag's name without dashes, # for comments (env VOUCH_CONFIG); a flag or the environment overrides the file")
}

// applyConfig sets the flags from --config or $VOUCH_CONFIG, keeping the
// precedence flag, environment, file, default.
func applyConfig(fs *flag.FlagSet, config *string) error {
	if config == nil {
		return nil
	}
	path := *config
	if path == "" {
		path = strings.TrimSpace(os.Getenv("VOUCH_CONFIG"))
	}
	if path == "" {
		return nil
	}
	return cmdline.ApplyConfig(fs, path, os.Getenv)
}
