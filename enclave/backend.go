package enclave

import (
	"context"
	"time"

	"github.com/vouch-dev/vouch/internal/store"
)

// backend is where the server keeps its durable state: the local store of a
// single runtime (localBackend) or the replicated state machine of a
// replica (replicatedBackend). Reads see committed state; writes return
// once the change is durable (fsynced, or applied after a raft commit).
type backend interface {
	Functions() ([]*store.Function, error)
	Bundle(id string) ([]byte, error)
	StateGet(functionID string, key []byte) ([]byte, bool, error)
	Counter(functionID string, name []byte) (int64, error)
	SeqCeiling() (uint64, error)
	// Revoked makes a backend a token.Revocations.
	Revoked(jti string) (bool, error)

	PutFunction(ctx context.Context, rec *store.Function, enc []byte) error
	DeleteFunction(ctx context.Context, id string) error
	// CommitState applies an invocation's durable writes and counter
	// values and, when seqCeiling is not zero, raises the sequence ceiling
	// with them. A replica refuses the commit unless it is appended in
	// raft term leaderTerm (when not zero), the term the invocation began
	// in.
	CommitState(ctx context.Context, functionID string, writes []store.StateWrite, counters map[string]int64, seqCeiling, leaderTerm uint64) error
	RaiseSeqCeiling(ctx context.Context, c uint64) error
	Revoke(ctx context.Context, jti string, expires time.Time) error
	PruneRevocations(ctx context.Context, now time.Time) (int, error)
	Close() error
}

// localBackend is a single runtime's store, in DataDir/vouch.db.
type localBackend struct{ st *store.Store }

func (b localBackend) Functions() ([]*store.Function, error) { return b.st.Functions() }
func (b localBackend) Bundle(id string) ([]byte, error)      { return b.st.Bundle(id) }
func (b localBackend) StateGet(fid string, key []byte) ([]byte, bool, error) {
	return b.st.StateGet(fid, key)
}
func (b localBackend) Counter(fid string, name []byte) (int64, error) { return b.st.Counter(fid, name) }
func (b localBackend) SeqCeiling() (uint64, error)                    { return b.st.SeqCeiling() }
func (b localBackend) Revoked(jti string) (bool, error)               { return b.st.Revoked(jti) }
func (b localBackend) PutFunction(_ context.Context, rec *store.Function, enc []byte) error {
	return b.st.PutFunction(rec, enc)
}
func (b localBackend) DeleteFunction(_ context.Context, id string) error {
	return b.st.DeleteFunction(id)
}
func (b localBackend) CommitState(_ context.Context, fid string, writes []store.StateWrite, counters map[string]int64, seqCeiling, _ uint64) error {
	if err := b.st.CommitState(fid, writes, counters); err != nil {
		return err
	}
	if seqCeiling > 0 {
		return b.st.RaiseSeqCeiling(seqCeiling)
	}
	return nil
}
func (b localBackend) RaiseSeqCeiling(_ context.Context, c uint64) error {
	return b.st.RaiseSeqCeiling(c)
}
func (b localBackend) Revoke(_ context.Context, jti string, expires time.Time) error {
	return b.st.Revoke(jti, expires)
}
func (b localBackend) PruneRevocations(_ context.Context, now time.Time) (int, error) {
	return b.st.PruneRevocations(now)
}
func (b localBackend) Close() error { return b.st.Close() }
