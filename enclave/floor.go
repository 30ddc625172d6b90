package enclave

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/internal/store"
)

// A proof of rollback is a result this runtime signed that its state does
// not know: a receipt whose seq is at or above the next seq (the runtime
// never signed that seq in its current state), or a term certificate above
// the function's stored term, or another certificate for its stored term.
// A host that restores an older copy of the data directory makes the
// runtime sign seqs and terms again; the nodes kept what it signed before
// and present it here (docs/ELECTION.md §5, docs/API.md).

// FloorKey is the durable state key under which the runtime hands a
// stateful function the certificate output of a verified proof of
// rollback. Functions must not use it for anything else; the built-in
// election function adopts it at its next run (docs/FORMATS.md).
const FloorKey = "vouch/floor"

// raiseAbove moves the sequencer past seq when seq is at or above the next
// number: it durably reserves a block above seq first, so no seq at or
// below it is ever signed again. It reports the next number and whether it
// moved.
func (q *sequencer) raiseAbove(ctx context.Context, seq uint64) (uint64, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if seq < q.next {
		return q.next, false, nil
	}
	if seq > math.MaxUint64-2*seqBlock {
		return q.next, false, fmt.Errorf("seq %d leaves no room for a block", seq)
	}
	c := seq + 1 + seqBlock
	if err := q.raise(ctx, c-1); err != nil {
		return q.next, false, err
	}
	q.next, q.ceiling = seq+1, c
	return q.next, true, nil
}

// storedTerm is what the floor endpoint reads of a term-keeping function's
// record term/<cluster> (the built-in election function's).
type storedTerm struct {
	Output []byte `json:"output"`
}

// termOf reads {"cluster","term"} from a certificate output; ok is false
// for an output that is not a term certificate.
func termOf(output []byte) (cluster string, term uint64, ok bool) {
	var o struct {
		Cluster *string `json:"cluster"`
		Term    *uint64 `json:"term"`
	}
	if json.Unmarshal(output, &o) != nil || o.Cluster == nil || o.Term == nil || *o.Term == 0 {
		return "", 0, false
	}
	return *o.Cluster, *o.Term, true
}

func (s *Server) handleFloor(w http.ResponseWriter, r *http.Request) {
	f := s.lookup(w, r)
	if f == nil {
		return
	}
	bad := func(msg string) {
		s.metrics.refused.WithLabelValues("bad_floor").Inc()
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: msg,
			Hint: "send {\"receipt\": …, \"output\": base64} exactly as this runtime returned them for this function (docs/API.md)"})
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, api.MaxFloorRequest))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, &api.Error{Status: http.StatusRequestEntityTooLarge, Code: api.CodeTooLarge,
				Message: fmt.Sprintf("a floor request is at most %d bytes", api.MaxFloorRequest)})
			return
		}
		s.fail(w, r, err)
		return
	}
	fr, err := api.DecodeFloorRequest(body)
	if err != nil {
		bad(err.Error())
		return
	}
	rc := &fr.Receipt
	if err := rc.Verify(s.ReceiptKey()); err != nil {
		bad("proof refused: the receipt is not signed by this runtime's receipt key: " + err.Error())
		return
	}
	if subtle.ConstantTimeCompare([]byte(rc.FunctionID), []byte(f.rec.ID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(rc.FunctionChecksum), []byte(f.rec.Checksum)) != 1 {
		bad(fmt.Sprintf("proof refused: the receipt is for function %.64s with checksum %.16s…, not for %s with %.16s…", rc.FunctionID, rc.FunctionChecksum, f.rec.ID, f.rec.Checksum))
		return
	}
	sum := sha256.Sum256(fr.Output)
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(rc.OutputSHA256)) != 1 {
		bad("proof refused: the output does not hash to the receipt's output_sha256")
		return
	}
	res := api.FloorResult{}
	next, raised, err := s.seq.raiseAbove(r.Context(), rc.Seq)
	if err != nil {
		s.fail(w, r, fmt.Errorf("raising the seq floor: %w", err))
		return
	}
	res.NextSeq = next
	if raised {
		res.RolledBack = true
		s.metrics.rollbacks.WithLabelValues("seq").Inc()
		s.log.Error("state rollback detected: a node holds a receipt this runtime signed with a seq its state does not know; moved the sequence past it",
			"function_id", f.rec.ID, "kind", "seq", "proven_seq", rc.Seq, "next_seq", next)
	}
	if cl, term, ok := termOf(fr.Output); ok {
		compiled, err := s.instance(r.Context(), f)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if compiled.Stateful() {
			stored, moved, err := s.floorTerm(r.Context(), f, cl, term, fr.Output)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			res.Term, res.StoredTerm = term, stored
			if moved {
				res.RolledBack = true
				s.metrics.rollbacks.WithLabelValues("term").Inc()
				s.log.Error("state rollback detected: a node holds a term certificate this runtime signed that its state does not know; the function moves past it at its next run",
					"function_id", f.rec.ID, "kind", "term", "cluster", cl, "proven_term", term, "stored_term", stored)
			}
		}
	}
	writeJSON(w, http.StatusOK, res)
}

// floorTerm compares a proven term certificate with the function's stored
// term for the cluster and, when the proof is above it (or another
// certificate for the same term), hands the output to the function under
// FloorKey. It runs under the function's state lock, so it never
// interleaves with an invocation.
func (s *Server) floorTerm(ctx context.Context, f *function, cluster string, term uint64, output []byte) (stored uint64, moved bool, err error) {
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	st := s.backend
	var rec storedTerm
	if b, ok, err := st.StateGet(f.rec.ID, []byte("term/"+cluster)); err != nil {
		return 0, false, err
	} else if ok {
		if err := json.Unmarshal(b, &rec); err != nil {
			return 0, false, fmt.Errorf("function %s: stored term of cluster %q is unreadable: %w", f.rec.ID, cluster, err)
		}
		if _, t, ok := termOf(rec.Output); ok {
			stored = t
		}
	}
	if term < stored || (term == stored && bytes.Equal(output, rec.Output)) {
		return stored, false, nil
	}
	if cur, ok, err := st.StateGet(f.rec.ID, []byte(FloorKey)); err != nil {
		return stored, false, err
	} else if ok && bytes.Equal(cur, output) {
		return stored, false, nil // handed over already; the function adopts it at its next run
	}
	if err := st.CommitState(ctx, f.rec.ID, []store.StateWrite{{Key: []byte(FloorKey), Value: bytes.Clone(output)}}, nil, 0, 0); err != nil {
		return stored, false, err
	}
	return stored, true, nil
}
