package cmdline

import (
	"errors"
	"flag"
	"strings"
)

// Parse parses flags that may come before, between or after positional
// arguments, and returns the positional ones; everything after "--" is
// positional. A bad flag is a UsageError; help asked for is flag.ErrHelp.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &UsageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" && !takesValue(fs, args, len(args)-len(rest)-1) {
			// flag.Parse consumed the terminator: everything after it is
			// positional, even what looks like a flag (vouch lock -- cmd -x).
			return append(pos, rest...), nil
		}
		args = rest
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// takesValue reports whether args[i] is the value of the flag before it
// (-name --), not a terminator.
func takesValue(fs *flag.FlagSet, args []string, i int) bool {
	if i == 0 {
		return false
	}
	prev := args[i-1]
	if len(prev) < 2 || prev[0] != '-' || prev == "--" {
		return false
	}
	name := strings.TrimLeft(prev, "-")
	if strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}
