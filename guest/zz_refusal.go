// This file's name sorts after the package's other files on purpose: the Go
// compiler lays out a package in file order, and this file, placed before
// state*.go, changed the bytes of the built-in election function, which
// does not use it (functions, TestEmbeddedFunctionsAreReproducible).

package guest

import "fmt"

// Refusal codes: the fixed public list of docs/API.md, "Refusals" (package
// api lists the same strings). Their code passes to the caller even when
// the input was sealed; the detail reaches only callers that sent their
// input in plaintext.
const (
	MalformedInput = "malformed_input" // not in the format the function takes
	MissingValue   = "missing_value"   // a value the function needs is missing
	InvalidValue   = "invalid_value"   // a value of a type or range not accepted
	DuplicateValue = "duplicate_value" // a value that must be unique is repeated
	TooManyValues  = "too_many_values" // more values than the function accepts
	NotPermitted   = "not_permitted"   // the function does not permit the request
)

// Refusal is an error that refuses the input with a code from the list
// above. A handler returns one (see Refuse) to fail the invocation.
type Refusal struct {
	Code   string
	Detail string
}

// Refuse returns a refusal with code and a detail built like fmt.Sprintf's.
func Refuse(code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Error returns the refusal as the runtime reads it:
// "vouch-refusal:CODE: detail".
func (r *Refusal) Error() string {
	if r.Detail == "" {
		return "vouch-refusal:" + r.Code
	}
	return "vouch-refusal:" + r.Code + ": " + r.Detail
}

// The built-in election function's refusal codes, on the same public list
// (package election/outcome declares them for it). They sit at the end of
// the file so that the code above keeps its lines, and the functions that
// use it their bytes.
const (
	MalformedSubmission  = "malformed_submission"  // not a well-formed election submission
	NoConfiguration      = "no_configuration"      // the cluster has none, and the submission attaches none
	ConfigurationRefused = "configuration_refused" // the attached configuration cannot be adopted
	ViewRefused          = "view_refused"          // the submission's view does not count
	LeaseNotRenewed      = "lease_not_renewed"     // the submitter leads, but a majority does not see it alive
)
