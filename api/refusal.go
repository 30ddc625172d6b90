package api

import "strings"

// A function can refuse its input with a code from a fixed public list
// (docs/API.md, "Refusals"). The runtime passes the code, and the code's
// own text below, to the caller even when the input was sealed; whatever
// else the function wrote stays inside the runtime. So a refusal of a
// sealed input tells the caller at most which of these codes the function
// chose, nothing more of the input.
//
// A function refuses by failing with an error message (a reactor's
// vouch.error_write, or a command's last line of stderr before a non-zero
// exit) that reads RefusalPrefix, the code, then optionally ": " and a
// detail that only plaintext callers get:
//
//	vouch-refusal:invalid_value: node_list[1]: 1.5 is not a node ID
const RefusalPrefix = "vouch-refusal:"

// Refusal codes. The guest package declares the same strings for Go
// functions; a function written in any language may write them.
const (
	RefusalMalformedInput = "malformed_input"
	RefusalMissingValue   = "missing_value"
	RefusalInvalidValue   = "invalid_value"
	RefusalDuplicateValue = "duplicate_value"
	RefusalTooManyValues  = "too_many_values"
	RefusalNotPermitted   = "not_permitted"

	// The built-in election function's refusals (docs/ELECTION.md,
	// "Refusals"; package election/outcome). A node must tell them apart
	// when it seals its submissions; the election's code state_unreadable
	// is the function's own fault, not its input's, and stays withheld
	// like any failure.
	RefusalMalformedSubmission  = "malformed_submission"
	RefusalNoConfiguration      = "no_configuration"
	RefusalConfigurationRefused = "configuration_refused"
	RefusalViewRefused          = "view_refused"
	RefusalLeaseNotRenewed      = "lease_not_renewed"
)

// RefusalTexts is the fixed public text of each refusal code: all a sealed
// caller learns besides the code.
var RefusalTexts = map[string]string{
	RefusalMalformedInput: "the input is not in the format the function takes",
	RefusalMissingValue:   "a value the function needs is missing from the input",
	RefusalInvalidValue:   "a value in the input is of a type or in a range the function does not accept",
	RefusalDuplicateValue: "the input repeats a value that must be unique",
	RefusalTooManyValues:  "the input holds more values than the function accepts",
	RefusalNotPermitted:   "the function does not permit what the input asks for",

	RefusalMalformedSubmission:  "the input is not a well-formed election submission",
	RefusalNoConfiguration:      "the cluster has no configuration yet, and the submission attaches none",
	RefusalConfigurationRefused: "the configuration the submission attaches cannot be adopted",
	RefusalViewRefused:          "the submission's view does not count",
	RefusalLeaseNotRenewed:      "the submitter leads the current term, but a majority of views does not see it alive, so its lease is not renewed",
}

// ParseRefusal reads a function's error message. If it is a refusal with a
// listed code, ParseRefusal returns the code and the detail after it ("" if
// none); otherwise ok is false and the message is not a refusal. A message
// that starts with RefusalPrefix but names an unlisted code is not a
// refusal.
func ParseRefusal(msg string) (code, detail string, ok bool) {
	rest, found := strings.CutPrefix(msg, RefusalPrefix)
	if !found {
		return "", "", false
	}
	code, detail, hasDetail := strings.Cut(rest, ":")
	if _, listed := RefusalTexts[code]; !listed {
		return "", "", false
	}
	if hasDetail {
		detail = strings.TrimPrefix(detail, " ")
	}
	return code, detail, true
}
