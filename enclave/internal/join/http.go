package join

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
)

// maxChallengeBody bounds the (empty or {}) body of a challenge request.
const maxChallengeBody = 1024

// Handler serves POST ChallengePath and POST JoinPath.
//
// leader says whether this replica leads and, if not, the leader's API URL
// (empty when unknown). A follower answers 421 not_leader with leader_url,
// or 503 no_leader, before it does anything else. After Admit succeeds the
// handler calls admit (the server adds the joiner as a raft voter, possibly
// in the background); if admit fails the joiner gets its error (an
// *api.Error is sent as is) and no keys. Otherwise it answers the Response.
// A nil admit admits without doing anything; a nil leader means this
// replica always leads.
func (m *Member) Handler(admit func(ctx context.Context, a *Admission) error, leader func() (isLeader bool, leaderURL string)) http.Handler {
	if admit == nil {
		admit = func(context.Context, *Admission) error { return nil }
	}
	if leader == nil {
		leader = func() (bool, string) { return true, "" }
	}
	h := &handler{m: m, admit: admit, leader: leader}
	mux := http.NewServeMux()
	mux.HandleFunc(ChallengePath, h.challenge)
	mux.HandleFunc(JoinPath, h.join)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &api.Error{Status: http.StatusNotFound, Code: api.CodeNoRoute,
			Message: fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path), Hint: "see docs/API.md"})
	})
	return mux
}

type handler struct {
	m      *Member
	admit  func(ctx context.Context, a *Admission) error
	leader func() (bool, string)
}

// prelude refuses what is not a POST and, on a follower, redirects to the
// leader. It reports whether the request may go on.
func (h *handler) prelude(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, &api.Error{Status: http.StatusMethodNotAllowed, Code: api.CodeMethodNotAllowed,
			Message: fmt.Sprintf("%s is not allowed on %s (allowed: POST)", r.Method, r.URL.Path), Hint: "see docs/API.md"})
		return false
	}
	if ok, url := h.leader(); !ok {
		if url == "" {
			writeError(w, &api.Error{Status: http.StatusServiceUnavailable, Code: api.CodeNoLeader, RetryAfter: time.Second,
				Message: "the replicas have no leader right now, and only the leader admits a replica", Hint: "retry shortly"})
			return false
		}
		writeError(w, &api.Error{Status: http.StatusMisdirectedRequest, Code: api.CodeNotLeader, LeaderURL: url,
			Message: "this replica is not the raft leader, which alone admits a replica", Hint: "send the join to leader_url"})
		return false
	}
	return true
}

func (h *handler) challenge(w http.ResponseWriter, r *http.Request) {
	if !h.prelude(w, r) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxChallengeBody+1))
	if err != nil {
		writeError(w, badRequest("cannot read the challenge request: "+err.Error()))
		return
	}
	if len(body) > maxChallengeBody {
		writeError(w, tooLarge("challenge request", maxChallengeBody))
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		var empty struct{}
		if err := api.UnmarshalStrict(body, &empty); err != nil {
			writeError(w, badRequest("challenge request body must be empty or {}: "+err.Error()))
			return
		}
	}
	n, err := h.m.Challenge()
	if err != nil {
		if errors.Is(err, ErrBusy) {
			writeError(w, &api.Error{Status: http.StatusTooManyRequests, Code: api.CodeRateLimited, RetryAfter: ChallengeTTL / 4,
				Message: err.Error(), Hint: "retry later; challenges expire after " + ChallengeTTL.String()})
			return
		}
		writeError(w, &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: "cannot draw a challenge: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, Challenge{Nonce: n})
}

func (h *handler) join(w http.ResponseWriter, r *http.Request) {
	if !h.prelude(w, r) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestSize+1))
	if err != nil {
		writeError(w, badRequest("cannot read the join request: "+err.Error()))
		return
	}
	if len(body) > MaxRequestSize {
		writeError(w, tooLarge("join request", MaxRequestSize))
		return
	}
	req, err := decodeRequest(body)
	if err != nil {
		writeError(w, badRequest(err.Error()))
		return
	}
	resp, a, err := h.m.Admit(r.Context(), req)
	if err != nil {
		writeError(w, admitError(err))
		return
	}
	if err := h.admit(r.Context(), a); err != nil {
		var ae *api.Error
		if !errors.As(err, &ae) {
			ae = &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal,
				Message: fmt.Sprintf("replica %q passed the join checks but could not be added: %v", a.ReplicaID, err),
				Hint:    "retry the join; the leader's log says more"}
		}
		writeError(w, ae)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// decodeRequest decodes a join request body strictly.
func decodeRequest(body []byte) (*Request, error) {
	var req Request
	if err := api.UnmarshalStrict(body, &req); err != nil {
		return nil, fmt.Errorf("join request: %v; want {\"attestation\": base64}", err)
	}
	if len(req.Attestation) == 0 {
		return nil, errors.New("join request has no attestation; want {\"attestation\": base64}")
	}
	return &req, nil
}

func badRequest(msg string) *api.Error {
	return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: msg, Hint: "use `vouch enclave join` or the join package, which speak this protocol"}
}

func tooLarge(what string, limit int) *api.Error {
	return &api.Error{Status: http.StatusRequestEntityTooLarge, Code: api.CodeTooLarge,
		Message: fmt.Sprintf("%s is larger than %d bytes", what, limit)}
}

// admitError maps an error of Admit to the answer the joiner sees.
func admitError(err error) *api.Error {
	if !errors.Is(err, ErrRefused) {
		return &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal, Message: err.Error(),
			Hint: "the member could not check or answer the join; retry, or see its log"}
	}
	hint := "the joiner must run the service's code on its platform"
	switch {
	case errors.Is(err, ErrChallenge):
		hint = "fetch a fresh challenge (POST " + ChallengePath + ") for each join attempt"
	case errors.Is(err, ErrMalformed):
		hint = "use `vouch enclave join` or the join package, which speak this protocol"
	case errors.Is(err, attest.ErrPCR):
		hint = "run the same vouch binary as the service's members, or add its measurements to the service's join allowlist"
	case errors.Is(err, attest.ErrSimulated):
		hint = "a service on real enclaves admits only real enclaves"
	case errors.Is(err, attest.ErrUntrustedRoot):
		hint = "a SIMULATED service admits only replicas of its own simulated root (the same attest-simulated-root.pem)"
	case errors.Is(err, attest.ErrDebug):
		hint = "run the joiner outside debug mode"
	}
	return &api.Error{Status: http.StatusForbidden, Code: api.CodeForbidden, Message: err.Error(), Hint: hint}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *api.Error) {
	if e.Status == 0 {
		e.Status = http.StatusInternalServerError
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, e.Status, api.ErrorResponse{Error: e})
}
