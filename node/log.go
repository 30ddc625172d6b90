package node

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/election"
)

// memberlistLog turns memberlist's "[LEVEL] memberlist: msg" lines into
// structured logs, and counts the packets it drops as malformed or foreign.
type memberlistLog struct{ n *Node }

func (l *memberlistLog) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelDebug
	switch {
	case strings.HasPrefix(line, "[ERR]"):
		level = slog.LevelWarn
	case strings.HasPrefix(line, "[WARN]"):
		level = slog.LevelInfo
	}
	if i := strings.Index(line, "memberlist: "); i >= 0 {
		line = line[i+len("memberlist: "):]
	}
	if badPacket(line) {
		l.n.metrics.drop("bad_packet")
		level = slog.LevelDebug // counted; a flood must not flood the log
	}
	l.n.log.Log(context.Background(), level, line, "source", "memberlist")
	return len(p), nil
}

// badPacketLines are the parts of memberlist's log lines (lowercased) that
// report a packet or stream it dropped as malformed, foreign or
// undecodable. memberlist counts none of these itself.
var badPacketLines = []string{
	"decode", "decrypt", "decompress", "message type", "msg type", "msgtype",
	"label", "too small", "checksum", "not supported", "truncated",
	"failed to receive", "failed to read remote state", "push/pull merge", "unexpected node",
}

func badPacket(line string) bool {
	l := strings.ToLower(line)
	for _, s := range badPacketLines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// eventLog writes the JSON-lines event log (Config.EventLog).
type eventLog struct {
	mu   sync.Mutex
	w    io.Writer
	node string
}

// Event is one line of the event log.
type Event struct {
	Time          time.Time `json:"t"`
	Node          string    `json:"node"`
	Event         string    `json:"event"` // "cert_accepted" or "leader_acted"
	Seq           uint64    `json:"seq"`
	Term          uint64    `json:"term,omitempty"`
	Leader        string    `json:"leader,omitempty"`
	MembersDigest string    `json:"members_digest,omitempty"`
	Cert          []byte    `json:"cert,omitempty"` // the certificate's wire form, to re-verify offline
}

func (e *eventLog) write(ev Event) {
	if e.w == nil {
		return
	}
	ev.Time, ev.Node = time.Now().UTC(), e.node
	b, _ := json.Marshal(ev)
	b = append(b, '\n')
	e.mu.Lock()
	e.w.Write(b)
	e.mu.Unlock()
}

func (e *eventLog) accepted(c *election.Certificate, o *election.Outcome) {
	if e.w == nil {
		return
	}
	e.write(Event{Event: "cert_accepted", Seq: c.Seq(), Leader: o.Leader, MembersDigest: o.MembersDigest, Cert: c.Encode()})
}

func (e *eventLog) acceptedTerm(c *election.Certificate, o *election.TermOutcome) {
	if e.w == nil {
		return
	}
	e.write(Event{Event: "cert_accepted", Seq: o.Term, Term: o.Term, Leader: o.Leader, MembersDigest: o.MembersDigest, Cert: c.Encode()})
}

func (e *eventLog) acted(seq uint64) {
	e.write(Event{Event: "leader_acted", Seq: seq, Leader: e.node})
}

// ReadEvents parses an event log.
func ReadEvents(r io.Reader) ([]Event, error) {
	var out []Event
	dec := json.NewDecoder(r)
	for {
		var ev Event
		if err := dec.Decode(&ev); err == io.EOF {
			return out, nil
		} else if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}
