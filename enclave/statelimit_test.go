package enclave

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/internal/store"
	"github.com/vouch-dev/vouch/sandbox"
)

// An invocation whose writes would take its function's volatile state over
// the limit fails at commit with a host_error, and nothing it wrote is
// kept: neither its durable writes nor its volatile ones. Invocations
// that fit still commit afterwards.
func TestVolatileLimitChangesNothing(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const fid = "fn"
	if err := st.PutFunction(&store.Function{ID: fid}, []byte("bundle")); err != nil {
		t.Fatal(err)
	}
	s := &Server{backend: localBackend{st}, now: time.Now}
	s.seq = newSequencer(0, s.backend.RaiseSeqCeiling)
	ctx := context.Background()
	value := make([]byte, sandbox.MaxStateValue) // shared: the map holds slices of one array
	fill := func(prefix string, n int) *stateTxn {
		txn := s.newTxn(fid, 0)
		for i := range n {
			if err := txn.Put(sandbox.Volatile, []byte(fmt.Sprintf("%s%04d", prefix, i)), value); err != nil {
				t.Fatal(err)
			}
		}
		return txn
	}
	// Fill 60 of the 64 MiB, 15 values per invocation (one invocation
	// writes at most 16 MiB).
	for _, p := range []string{"A", "B", "C", "D"} {
		if _, _, err := fill(p, 15).commit(ctx); err != nil {
			t.Fatalf("filling: %v", err)
		}
	}
	before := s.volatile.size[fid]
	if before < 60<<20 || before > maxVolatileState {
		t.Fatalf("filled %d bytes", before)
	}

	// Over the limit: a durable write, a volatile delete and volatile
	// writes that do not fit.
	txn := fill("over", 5)
	if err := txn.Put(sandbox.Durable, []byte("d"), []byte("kept?")); err != nil {
		t.Fatal(err)
	}
	if err := txn.Delete(sandbox.Volatile, []byte("A0000")); err != nil {
		t.Fatal(err)
	}
	_, _, err = txn.commit(ctx)
	var fe *sandbox.Error
	if !errors.As(err, &fe) || fe.Kind != sandbox.KindHost || !strings.Contains(fe.Message, "nothing was written") {
		t.Fatalf("over-limit commit: %v, want a host_error", err)
	}
	if _, ok, _ := st.StateGet(fid, []byte("d")); ok {
		t.Fatal("the durable write of a failed commit was kept")
	}
	if _, ok := s.volatile.get(fid, "over0000"); ok {
		t.Fatal("a volatile write of a failed commit was applied")
	}
	if _, ok := s.volatile.get(fid, "A0000"); !ok {
		t.Fatal("a volatile delete of a failed commit was applied")
	}
	if got := s.volatile.size[fid]; got != before {
		t.Fatalf("volatile size went from %d to %d after a failed commit", before, got)
	}

	// Replacing values keeps the size, so it fits; so do deletes.
	txn = s.newTxn(fid, 0)
	txn.Put(sandbox.Volatile, []byte("A0000"), value)
	txn.Delete(sandbox.Volatile, []byte("A0001"))
	txn.Put(sandbox.Durable, []byte("d"), []byte("kept"))
	if _, _, err := txn.commit(ctx); err != nil {
		t.Fatalf("a commit that fits: %v", err)
	}
	if v, ok, _ := st.StateGet(fid, []byte("d")); !ok || string(v) != "kept" {
		t.Fatalf("durable write after a fitting commit: %q %v", v, ok)
	}
	if got := s.volatile.size[fid]; got != before-len("A0001")-len(value) {
		t.Fatalf("volatile size %d after replacing one value and deleting one, want %d", got, before-len("A0001")-len(value))
	}
}
