// Package cmdline holds what vouch's commands (vouch, vouch-bench) share on
// the command line: the terminal rules they print by (UI), the errors that
// choose an exit code or carry advice, the parsing of their flags, the
// trust pins they take as flags and where they find the owner credential.
package cmdline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/vouch-dev/vouch/api"
)

// UI prints to the terminal by the rules every vouch command follows
// (after FiloSottile/age's cmd/age/tui.go):
//
//   - Results go to Out; everything else to Err.
//   - Errors print as "PROG: error: …", followed when useful by
//     "PROG: hint: …" with what to do next; warnings as "PROG: warning: …".
//   - Exit code 1 on error, 2 on a usage error (see Exit).
type UI struct {
	Prog     string // the command's name, which starts every line on Err
	Out, Err io.Writer
	// Hint, if not nil, returns the command's own advice for an error, or
	// "". Fail prints it in place of the runtime's.
	Hint func(error) string
	// FunctionLog makes Fail print the log of a failed function that the
	// runtime sends with its error.
	FunctionLog bool
}

func (u *UI) Errorf(format string, args ...any) {
	fmt.Fprintf(u.Err, u.Prog+": error: "+format+"\n", args...)
}

func (u *UI) Hintf(format string, args ...any) {
	fmt.Fprintf(u.Err, u.Prog+": hint: "+format+"\n", args...)
}

func (u *UI) Warnf(format string, args ...any) {
	fmt.Fprintf(u.Err, u.Prog+": warning: "+format+"\n", args...)
}

func (u *UI) Infof(format string, args ...any) {
	fmt.Fprintf(u.Err, u.Prog+": "+format+"\n", args...)
}

// Fail prints an error with its advice: the runtime's message, the
// function's log (with FunctionLog) and the command's hint, else the
// runtime's; a HintError's hint; or the command's hint.
func (u *UI) Fail(err error) {
	var hint string
	if u.Hint != nil {
		hint = u.Hint(err)
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		msg := ae.Message
		if ae.Kind != "" {
			msg += " [" + ae.Kind + "]"
		}
		u.Errorf("%s", msg)
		if u.FunctionLog && ae.Log != "" {
			u.PrintLog("function log", ae.Log)
		}
		if hint == "" {
			hint = ae.Hint
		}
		if hint != "" {
			u.Hintf("%s", hint)
		}
		return
	}
	var he *HintError
	if errors.As(err, &he) {
		u.Errorf("%v", he.Err)
		u.Hintf("%s", he.Hint)
		return
	}
	u.Errorf("%v", err)
	if hint != "" {
		u.Hintf("%s", hint)
	}
}

// PrintLog prints a function's log on Err: "PROG: title:", then the log
// with each line marked "  | ".
func (u *UI) PrintLog(title, log string) {
	lines := strings.Split(log, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  | " + l
		}
	}
	fmt.Fprintf(u.Err, "%s: %s:\n%s\n", u.Prog, title, strings.TrimRight(strings.Join(lines, "\n"), "\n"))
}

// Exit prints the error of the command at path (such as "token revoke")
// and returns the exit code: 0 for none or for help asked for, 2 for a
// UsageError, with a hint to the command's help, else 1.
func (u *UI) Exit(path string, err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(*UsageError)):
		u.Errorf("%v", err)
		u.Hintf("see `%s %s -h`", u.Prog, path)
		return 2
	}
	u.Fail(err)
	return 1
}

// Logger returns a logger for the client library that prints its warnings
// and errors on Err as "PROG: warning: msg (k=v, …)".
func (u *UI) Logger() *slog.Logger {
	return slog.New(&warnHandler{prefix: u.Prog + ": warning: ", w: u.Err})
}

type warnHandler struct {
	prefix string
	w      io.Writer
	attrs  []slog.Attr
}

func (h *warnHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *warnHandler) Handle(_ context.Context, r slog.Record) error {
	var kv []string
	for _, a := range h.attrs {
		kv = append(kv, a.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		kv = append(kv, a.String())
		return true
	})
	line := h.prefix + r.Message
	if len(kv) > 0 {
		line += " (" + strings.Join(kv, ", ") + ")"
	}
	_, err := fmt.Fprintln(h.w, line)
	return err
}

func (h *warnHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &warnHandler{prefix: h.prefix, w: h.w, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *warnHandler) WithGroup(string) slog.Handler { return h }
