// Package outcome defines what the election function (built-in
// "election") answers a submission: a term certificate's output, or a
// typed refusal. The function, compiled to WebAssembly, and the nodes
// share it. It imports no other vouch package, so that no node-side edit
// can change the function's bytes (docs/FORMATS.md, "Built-in functions").
package outcome

import (
	"fmt"
	"strings"
	"time"
)

// Term is a term certificate's output (docs/FORMATS.md, "Certificates"):
// the election function writes it and nodes parse it.
type Term struct {
	Cluster       string `json:"cluster"`
	ConfigDigest  string `json:"config_digest"`
	Term          uint64 `json:"term"`
	Leader        string `json:"leader"`
	MembersDigest string `json:"members_digest"`
	IssuedAtMs    int64  `json:"issued_at_ms"`
	LeaseMs       int64  `json:"lease_ms"`
	Policy        string `json:"policy"`
	Mode          string `json:"mode"`
}

// Lease returns the term's lease.
func (o *Term) Lease() time.Duration { return time.Duration(o.LeaseMs) * time.Millisecond }

// Code says why the election function refused a submission.
type Code string

// Refusal codes. A caller branches on the code, never on the message. The
// runtime passes every code but StateUnreadable to callers whose input was
// sealed (api.RefusalTexts lists them, with the fixed text such a caller
// gets instead of the message).
const (
	// Malformed: the submission is not a well-formed one.
	Malformed Code = "malformed_submission"
	// NoConfiguration: the cluster has no configuration yet, and the
	// submission attaches none.
	NoConfiguration Code = "no_configuration"
	// ConfigurationRefused: the attached configuration cannot be adopted.
	ConfigurationRefused Code = "configuration_refused"
	// ViewRefused: the view does not count (not a member, wrong key, bad
	// signature, stale seq, clock skew, too large, signed before a restart).
	ViewRefused Code = "view_refused"
	// LeaseNotRenewed: the submitter leads the current term, but a
	// majority of views does not see it alive, so its lease is not
	// renewed. The runtime answered; it did not fail.
	LeaseNotRenewed Code = "lease_not_renewed"
	// StateUnreadable: the function's stored state for the cluster does
	// not decode. It is the function's fault, not the input's, so it is
	// not a public refusal: a sealed caller sees a failed run.
	StateUnreadable Code = "state_unreadable"
)

// Codes lists every refusal code.
var Codes = []Code{Malformed, NoConfiguration, ConfigurationRefused, ViewRefused, LeaseNotRenewed, StateUnreadable}

// Prefix starts every refusal. It is api.RefusalPrefix, which this package
// does not import (see the package comment).
const Prefix = "vouch-refusal:"

// MaxRefusalBytes bounds a refusal's encoding: the runtime keeps at most
// 4096 bytes of a function's error message.
const MaxRefusalBytes = 4096

// Refusal is the election function's answer when it refuses a submission.
// The invocation fails (so it changes nothing and has no receipt), and its
// error message is a refusal in the runtime's public format
// (docs/API.md, "Refusals"): Prefix, the code, ": " and the message.
//
//	vouch-refusal:lease_not_renewed: lease not renewed: leader "5002" of term 3 is not alive by a majority of views
//
// The runtime passes the code to every caller, and the message only to
// callers whose input was plaintext.
type Refusal struct {
	Code    Code
	Message string
}

// Refuse returns a refusal with code and a message made as fmt.Sprintf
// makes it.
func Refuse(code Code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error returns the refusal's encoding, its message cut so that it fits
// MaxRefusalBytes and made valid UTF-8.
func (r *Refusal) Error() string {
	head := Prefix + string(r.Code)
	if r.Message == "" {
		return head
	}
	head += ": "
	msg := strings.ToValidUTF8(r.Message, "\uFFFD")
	if len(head)+len(msg) > MaxRefusalBytes {
		cut := max(MaxRefusalBytes-len(head)-len("..."), 0)
		for cut > 0 && !isRuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "..."
	}
	return head + msg
}

func isRuneStart(b byte) bool { return b&0xc0 != 0x80 }

// ParseRefusal decodes a refusal from a failed invocation's error message:
// the function's own message, which the runtime passes whole only to
// plaintext callers (a sealed caller has the code alone, api.Error's
// Refusal). It refuses anything else: another function's message, a code
// this package does not list, or a code followed by neither the end nor
// ":".
func ParseRefusal(msg string) (*Refusal, error) {
	if len(msg) > MaxRefusalBytes {
		return nil, fmt.Errorf("refusal is %d bytes, more than %d", len(msg), MaxRefusalBytes)
	}
	rest, ok := strings.CutPrefix(msg, Prefix)
	if !ok {
		return nil, fmt.Errorf("not a refusal: it does not start with %q", Prefix)
	}
	code, detail, _ := strings.Cut(rest, ":")
	for _, c := range Codes {
		if Code(code) == c {
			return &Refusal{Code: c, Message: strings.TrimPrefix(detail, " ")}, nil
		}
	}
	return nil, fmt.Errorf("unknown refusal code %q", code)
}
