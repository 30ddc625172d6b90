package election

import (
	"bytes"
	"strings"

	"github.com/vouch-dev/vouch/internal/strictjson"
)

// parseOutcome decodes a certificate's output. The election function
// writes it in one canonical form (docs/FORMATS.md, "Election
// function"): compact, its four fields in order, strings of printable
// ASCII with only " and \ escaped. That form is read by a scanner that
// allocates the member IDs as slices of one string; anything else goes
// through the strict JSON decoder. The scanner accepts only documents
// the strict decoder also accepts, with the same result (FuzzParseOutcome).
func parseOutcome(b []byte) (*Outcome, error) {
	if o, ok := scanOutcome(b); ok {
		return o, nil
	}
	var o Outcome
	if err := strictjson.Unmarshal(b, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// scanOutcome reads the canonical form, or reports false.
func scanOutcome(b []byte) (*Outcome, bool) {
	s := outcomeScanner{src: string(b)}
	var o Outcome
	ok := s.lit(`{"cluster":`) && s.str(&o.Cluster) &&
		s.lit(`,"leader":`) && s.str(&o.Leader) &&
		s.lit(`,"members":[`)
	if !ok {
		return nil, false
	}
	o.Members = make([]string, 0, bytes.Count(b, []byte(`","`))+1)
	for {
		var id string
		if !s.str(&id) {
			return nil, false
		}
		o.Members = append(o.Members, id)
		if !s.lit(",") {
			break
		}
	}
	if !s.lit(`],"members_digest":`) || !s.str(&o.MembersDigest) || !s.lit("}") || s.pos != len(s.src) {
		return nil, false
	}
	return &o, true
}

type outcomeScanner struct {
	src string
	pos int
}

func (s *outcomeScanner) lit(l string) bool {
	if !strings.HasPrefix(s.src[s.pos:], l) {
		return false
	}
	s.pos += len(l)
	return true
}

// str reads a JSON string of printable ASCII in which only " and \ are
// escaped.
func (s *outcomeScanner) str(out *string) bool {
	if s.pos >= len(s.src) || s.src[s.pos] != '"' {
		return false
	}
	start := s.pos + 1
	escaped := false
	for i := start; i < len(s.src); i++ {
		switch c := s.src[i]; {
		case c == '"':
			v := s.src[start:i]
			if escaped {
				v = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(v)
			}
			*out, s.pos = v, i+1
			return true
		case c == '\\':
			if i+1 >= len(s.src) || s.src[i+1] != '"' && s.src[i+1] != '\\' {
				return false
			}
			escaped = true
			i++
		case c < 0x20 || c >= 0x7f:
			return false
		}
	}
	return false
}
