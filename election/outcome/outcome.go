// Package outcome defines what the election function (built-in
// "election") answers a submission: a term certificate's output, or a
// typed refusal. The function, compiled to WebAssembly, and the nodes
// share it. It imports no vouch package but strictjson, a leaf, so that no
// node-side edit can change the function's bytes (docs/FORMATS.md,
// "Built-in functions").
package outcome

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/vouch-dev/vouch/internal/strictjson"
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

// Refusal codes. A caller branches on the code, never on the message.
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
	// not decode.
	StateUnreadable Code = "state_unreadable"
)

// Codes lists every refusal code.
var Codes = []Code{Malformed, NoConfiguration, ConfigurationRefused, ViewRefused, LeaseNotRenewed, StateUnreadable}

// MaxRefusalBytes bounds a refusal's encoding: the runtime keeps at most
// 4096 bytes of a function's error message.
const MaxRefusalBytes = 4096

// Refusal is the election function's answer when it refuses a submission.
// The invocation fails (so it changes nothing and has no receipt), and its
// error message is the refusal's JSON:
//
//	{"code":"lease_not_renewed","message":"lease not renewed: leader \"5002\" of term 3 is not alive by a majority of views"}
type Refusal struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Refuse returns a refusal with code and a message made as fmt.Sprintf
// makes it.
func Refuse(code Code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error returns the refusal's JSON, cut so that it fits MaxRefusalBytes.
func (r *Refusal) Error() string {
	msg := r.Message
	for {
		b, _ := json.Marshal(Refusal{Code: r.Code, Message: msg})
		if len(b) <= MaxRefusalBytes || msg == "" {
			return string(b)
		}
		// Escapes make the encoding longer than the message: shrink it in
		// proportion, and by at least one byte.
		cut := min(len(msg)*MaxRefusalBytes/len(b), len(msg)-1) - 3
		if cut < 0 {
			cut = 0
		}
		for cut > 0 && !isRuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut]
		if cut > 0 {
			msg += "..."
		}
	}
}

func isRuneStart(b byte) bool { return b&0xc0 != 0x80 }

// ParseRefusal decodes a refusal from a failed invocation's error message.
// It refuses anything else: another function's message, JSON that is not
// strict (other fields, a field twice), or a code this package does not
// list.
func ParseRefusal(msg string) (*Refusal, error) {
	if len(msg) > MaxRefusalBytes {
		return nil, fmt.Errorf("refusal is %d bytes, more than %d", len(msg), MaxRefusalBytes)
	}
	var r Refusal
	if err := strictjson.Unmarshal([]byte(msg), &r); err != nil {
		return nil, fmt.Errorf("not a refusal: %w", err)
	}
	for _, c := range Codes {
		if r.Code == c {
			return &r, nil
		}
	}
	return nil, fmt.Errorf("unknown refusal code %q", r.Code)
}
