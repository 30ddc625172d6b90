// Command vouch is the vouch CLI: the runtime (enclave), the node, the demo
// and the tools around them. It only parses flags and calls packages.
//
// Terminal rules (after FiloSottile/age's cmd/age/tui.go):
//
//   - Results go to stdout; everything else to stderr. Help asked for
//     (`vouch help`, -h) is a result: stdout, exit code 0.
//   - Errors print as "vouch: error: …", followed when useful by
//     "vouch: hint: …" with what to do next. Exit code 1 on error, 2 on a
//     usage error (unknown command or flag, bad arguments).
//   - Nothing secret is ever printed, except the owner credential once, when
//     the runtime creates it.
//   - Wherever a SIMULATED attestation appears, the output says SIMULATED.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vouch-dev/vouch/api"
)

func main() {
	os.Exit(doMain(os.Args[1:], os.Stdout, os.Stderr))
}

// ui prints to the terminal following the rules at the top of this file.
type ui struct {
	out, err io.Writer
}

func (u *ui) errorf(format string, args ...any) {
	fmt.Fprintf(u.err, "vouch: error: "+format+"\n", args...)
}

func (u *ui) hintf(format string, args ...any) {
	fmt.Fprintf(u.err, "vouch: hint: "+format+"\n", args...)
}

func (u *ui) warnf(format string, args ...any) {
	fmt.Fprintf(u.err, "vouch: warning: "+format+"\n", args...)
}

func (u *ui) infof(format string, args ...any) {
	fmt.Fprintf(u.err, "vouch: "+format+"\n", args...)
}

// fail prints an error, with the runtime's hint (or this command's, see
// libraryHint) and the function's log when there are any.
func (u *ui) fail(err error) {
	hint := libraryHint(err)
	var ae *api.Error
	if errors.As(err, &ae) {
		msg := ae.Message
		if ae.Kind != "" {
			msg += " [" + ae.Kind + "]"
		}
		u.errorf("%s", msg)
		if ae.Log != "" {
			fmt.Fprintf(u.err, "vouch: function log:\n%s\n", strings.TrimRight(indent(ae.Log), "\n"))
		}
		if hint == "" {
			hint = ae.Hint
		}
		if hint != "" {
			u.hintf("%s", hint)
		}
		return
	}
	var he *hintError
	if errors.As(err, &he) {
		u.errorf("%v", he.err)
		u.hintf("%s", he.hint)
		return
	}
	u.errorf("%v", err)
	if hint != "" {
		u.hintf("%s", hint)
	}
}

func indent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  | " + l
		}
	}
	return strings.Join(lines, "\n")
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// hintError is an error with advice.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() + " (" + e.hint + ")" }
func (e *hintError) Unwrap() error { return e.err }

func withHint(err error, format string, args ...any) error {
	return &hintError{err: err, hint: fmt.Sprintf(format, args...)}
}
