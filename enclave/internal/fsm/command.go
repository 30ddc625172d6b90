package fsm

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vouch-dev/vouch/internal/store"
	"github.com/vouch-dev/vouch/internal/strictjson"
)

// MaxCommand bounds one encoded command: a deploy carries a bundle of at
// most 64 MiB, base64-encoded.
const MaxCommand = 96 << 20

// Command types.
const (
	TypeDeploy         = "deploy"
	TypeDelete         = "delete"
	TypeRevoke         = "revoke"
	TypePrune          = "prune"
	TypeCommit         = "commit"
	TypeSeq            = "seq"
	TypeReplica        = "replica"
	TypeReplicaRemoved = "replica_removed"
)

// ErrMalformed is wrapped by the errors about command or snapshot bytes
// that do not decode.
var ErrMalformed = errors.New("fsm: malformed")

// Command is one log entry. Type names the one payload field that is set.
type Command struct {
	Type           string          `json:"type"`
	Deploy         *Deploy         `json:"deploy,omitempty"`
	Delete         *Delete         `json:"delete,omitempty"`
	Revoke         *Revoke         `json:"revoke,omitempty"`
	Prune          *Prune          `json:"prune,omitempty"`
	Commit         *Commit         `json:"commit,omitempty"`
	Seq            *Seq            `json:"seq,omitempty"`
	Replica        *Replica        `json:"replica,omitempty"`
	ReplicaRemoved *ReplicaRemoved `json:"replica_removed,omitempty"`
}

// Deploy adds a function.
type Deploy struct {
	Function store.Function `json:"function"`
	Bundle   []byte         `json:"bundle"`
}

// Delete removes a function with its state and counters.
type Delete struct {
	FunctionID string `json:"function_id"`
}

// Revoke records that token JTI is revoked until Expires (Unix seconds).
type Revoke struct {
	JTI     string `json:"jti"`
	Expires int64  `json:"expires"`
}

// Prune forgets revocations that expired before Now (Unix seconds), which
// the leader reads from its clock when it proposes the command.
type Prune struct {
	Now int64 `json:"now"`
}

// Commit is one invocation's durable effects: state writes, counter
// values and, when the leader's block of sequence numbers is used up, a
// new sequence ceiling. All of it applies, or none.
type Commit struct {
	FunctionID string         `json:"function_id"`
	Writes     []Write        `json:"writes,omitempty"`
	Counters   []CounterValue `json:"counters,omitempty"`
	SeqCeiling uint64         `json:"seq_ceiling,omitempty"`
	// LeaderTerm, when not zero, is the raft term in which the leader
	// began the invocation; the commit is refused unless its log entry was
	// appended in that term, so an invocation that straddled a change of
	// leadership (and may have read volatile state of an older term)
	// writes nothing.
	LeaderTerm uint64 `json:"leader_term,omitempty"`
}

// Write sets Key to Value; a nil Value (null) deletes Key.
type Write struct {
	Key   []byte `json:"key"`
	Value []byte `json:"value"`
}

// CounterValue is a counter's new value, which must be above its old one.
type CounterValue struct {
	Name  []byte `json:"name"`
	Value int64  `json:"value"`
}

// Seq raises the receipt sequence ceiling.
type Seq struct {
	Ceiling uint64 `json:"ceiling"`
}

// Replica adds or updates an entry of the replica directory.
type Replica struct {
	ID       string `json:"id"`
	APIURL   string `json:"api_url"`
	RaftAddr string `json:"raft_addr"`
}

// ReplicaRemoved drops a replica from the directory.
type ReplicaRemoved struct {
	ID string `json:"id"`
}

// Encode returns the command's log entry bytes.
func (c *Command) Encode() ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

// DecodeCommand decodes and checks one log entry.
func DecodeCommand(b []byte) (*Command, error) {
	if len(b) > MaxCommand {
		return nil, fmt.Errorf("%w command: %d bytes, at most %d", ErrMalformed, len(b), MaxCommand)
	}
	var c Command
	if err := strictjson.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%w command: %v", ErrMalformed, err)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return &c, nil
}

// check makes sure exactly the payload that Type names is set.
func (c *Command) check() error {
	set := 0
	for _, p := range []bool{c.Deploy != nil, c.Delete != nil, c.Revoke != nil, c.Prune != nil, c.Commit != nil, c.Seq != nil, c.Replica != nil, c.ReplicaRemoved != nil} {
		if p {
			set++
		}
	}
	var ok bool
	switch c.Type {
	case TypeDeploy:
		ok = c.Deploy != nil
	case TypeDelete:
		ok = c.Delete != nil
	case TypeRevoke:
		ok = c.Revoke != nil
	case TypePrune:
		ok = c.Prune != nil
	case TypeCommit:
		ok = c.Commit != nil
	case TypeSeq:
		ok = c.Seq != nil
	case TypeReplica:
		ok = c.Replica != nil
	case TypeReplicaRemoved:
		ok = c.ReplicaRemoved != nil
	default:
		return fmt.Errorf("%w command: unknown type %q", ErrMalformed, c.Type)
	}
	if !ok || set != 1 {
		return fmt.Errorf("%w command: type %q needs its %q member and no other payload", ErrMalformed, c.Type, c.Type)
	}
	return nil
}
