package sandbox

import (
	"errors"
	"fmt"
)

// ErrModule is wrapped by errors about a module that cannot be loaded.
var ErrModule = errors.New("invalid module")

// ErrMemoryLimit is wrapped, with ErrModule, by errors about a module whose
// memory or tables start larger than its memory limit allows: raising the
// limit (memory_mib) is the fix.
var ErrMemoryLimit = errors.New("over the memory limit")

// memoryLimitError returns an error that wraps both ErrModule and
// ErrMemoryLimit and reads "invalid module: " and the message.
func memoryLimitError(format string, args ...any) error {
	return &memLimitErr{fmt.Errorf("%w: "+format, append([]any{ErrModule}, args...)...)}
}

type memLimitErr struct{ error }

func (e *memLimitErr) Unwrap() []error { return []error{e.error, ErrMemoryLimit} }

// ErrClosed is returned by invocations of a closed function.
var ErrClosed = errors.New("function is closed")

// Kind classifies a failed invocation.
type Kind string

// Failure kinds. Their string values appear in the HTTP API.
const (
	KindTimeout        Kind = "timeout"
	KindOutOfMemory    Kind = "out_of_memory"
	KindTrap           Kind = "trap"
	KindExit           Kind = "exit"
	KindFailed         Kind = "failed" // the handler returned an error
	KindInputTooLarge  Kind = "input_too_large"
	KindOutputTooLarge Kind = "output_too_large"
	KindHost           Kind = "host_error"
)

// Error is a failed invocation. It is the function's failure, not the
// runtime's: the runtime goes on serving.
type Error struct {
	Kind     Kind
	ExitCode uint32 // for KindExit and KindOutOfMemory
	Message  string
	Log      []byte // the function's stderr, cut at the log limit
}

func (e *Error) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("function failed (%s)", e.Kind)
}
