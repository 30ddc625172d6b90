package enclave

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/enclave/internal/fsm"
	"github.com/vouch-dev/vouch/enclave/internal/replica"
	"github.com/vouch-dev/vouch/internal/store"
	"github.com/vouch-dev/vouch/internal/version"
	"github.com/vouch-dev/vouch/receipt"
	"github.com/vouch-dev/vouch/sandbox"
	"github.com/vouch-dev/vouch/seal"
	"github.com/vouch-dev/vouch/token"
)

func versionString() string { return "vouch/" + version.Version }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/identity", s.handleIdentity)
	mux.HandleFunc("POST /v1/functions", s.leaderOnly(s.owner(s.handleDeploy)))
	mux.HandleFunc("GET /v1/functions", s.owner(s.handleList))
	mux.HandleFunc("GET /v1/functions/{id}", s.handleGet)
	mux.HandleFunc("DELETE /v1/functions/{id}", s.leaderOnly(s.owner(s.handleDelete)))
	mux.HandleFunc("POST /v1/functions/{id}/run", s.leaderOnly(s.handleRun))
	mux.HandleFunc("POST /v1/functions/{id}/floor", s.leaderOnly(s.handleFloor))
	mux.HandleFunc("POST /v1/functions/{id}/tokens", s.leaderOnly(s.owner(s.handleMintToken)))
	mux.HandleFunc("POST /v1/tokens/revoke", s.leaderOnly(s.owner(s.handleRevoke)))
	mux.HandleFunc("GET /v1/replicas", s.handleReplicas)
	if s.rep != nil {
		mux.HandleFunc("DELETE /v1/replicas/{id}", s.leaderOnly(s.owner(s.handleRemoveReplica)))
		jh := s.joinHandler()
		mux.Handle("POST /v1/replicas/challenge", jh)
		mux.Handle("POST /v1/replicas/join", jh)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if s.rep == nil {
			fmt.Fprintf(w, "ok %s attestation=%s\n", versionString(), s.platformTag)
			return
		}
		st := s.rep.node.Status()
		health := "ok"
		if s.rep.node.Tampered() != nil {
			health = "tampered"
		}
		leader := st.LeaderID
		if leader == "" {
			leader = "none"
		}
		fmt.Fprintf(w, "%s %s attestation=%s replica=%s state=%s leader=%s\n", health, versionString(), s.platformTag, s.rep.cfg.ID, st.State, leader)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.gatherer, promhttp.HandlerOpts{}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && r.URL.Path != "/metrics" && s.tampered(w) {
			return
		}
		// Runs are the hot path: a request the run route surely matches
		// skips the lookup that tells a missing route apart.
		if isRunRequest(r) {
			mux.ServeHTTP(w, r)
			return
		}
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// No route: tell 404 from 405 the way the mux would, in JSON.
		rec := &statusOnly{header: http.Header{}}
		mux.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", rec.header.Get("Allow"))
			writeError(w, &api.Error{Status: http.StatusMethodNotAllowed, Code: api.CodeMethodNotAllowed,
				Message: fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, rec.header.Get("Allow")), Hint: "see docs/API.md"})
			return
		}
		writeError(w, &api.Error{Status: http.StatusNotFound, Code: api.CodeNoRoute,
			Message: fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path), Hint: "see docs/API.md"})
	})
}

// isRunRequest reports whether r is POST /v1/functions/{id}/run with a
// clean, unescaped path and an ID of A-Z a-z 0-9 . _ - (not "." or ".."):
// a request that the mux routes to handleRun without a redirect.
func isRunRequest(r *http.Request) bool {
	const prefix, suffix = "/v1/functions/", "/run"
	p := r.URL.Path
	if r.Method != http.MethodPost || r.URL.RawPath != "" || len(p) <= len(prefix)+len(suffix) ||
		p[:len(prefix)] != prefix || p[len(p)-len(suffix):] != suffix {
		return false
	}
	id := p[len(prefix) : len(p)-len(suffix)]
	if id == "." || id == ".." {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// statusOnly records the status and headers a handler writes.
type statusOnly struct {
	header http.Header
	status int
}

func (s *statusOnly) Header() http.Header         { return s.header }
func (s *statusOnly) Write(p []byte) (int, error) { return len(p), nil }
func (s *statusOnly) WriteHeader(code int)        { s.status = code }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *api.Error) {
	if e.Status == 0 {
		e.Status = http.StatusInternalServerError
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter/time.Second)+1))
	}
	writeJSON(w, e.Status, api.ErrorResponse{Error: e})
}

// fail writes err, mapping known errors to statuses. Anything else is an
// internal error: the client gets a generic message with an error ID, and
// the details go to the log under that ID, never to the client.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *api.Error
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, store.ErrNotFound):
		ae = &api.Error{Status: http.StatusNotFound, Code: api.CodeNotFound, Message: fmt.Sprintf("function %q is not deployed on this runtime", r.PathValue("id")), Hint: "list functions with `vouch list`"}
	case errors.Is(err, sandbox.ErrClosed):
		ae = &api.Error{Status: http.StatusServiceUnavailable, Code: api.CodeUnavailable, Message: "the function was deleted or the runtime is shutting down"}
	case s.rep != nil && (errors.Is(err, replica.ErrNotLeader) || errors.Is(err, fsm.ErrStaleTerm)):
		s.rep.redirects.Inc()
		ae = s.notLeader()
	case errors.Is(err, replica.ErrClosed):
		ae = &api.Error{Status: http.StatusServiceUnavailable, Code: api.CodeUnavailable, Message: "the replica is shutting down", Hint: "retry on another replica"}
	case errors.Is(err, context.Canceled):
		ae = &api.Error{Status: 499, Code: api.CodeCancelled, Message: "request cancelled by the client"}
	default:
		ae = s.internalError(r, "request failed", err)
	}
	writeError(w, ae)
}

// internalError logs err with a fresh error ID and returns the 500 a client
// sees: a generic message that names the ID, so an operator can find the
// details in the log, and no internal detail (paths, store errors).
func (s *Server) internalError(r *http.Request, what string, err error) *api.Error {
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	s.log.Error(what, "error_id", id, "method", r.Method, "path", r.URL.Path, "err", err)
	return &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal,
		Message: "internal error (error ID " + id + ")",
		Hint:    "the runtime's log has the details under this error ID; retry later, or report it to the runtime's operator"}
}

// bearer returns the Authorization bearer credential, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// owner wraps a handler that needs the owner credential.
func (s *Server) owner(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cred := bearer(r)
		if cred == "" {
			writeError(w, &api.Error{Status: http.StatusUnauthorized, Code: api.CodeUnauthorized, Message: "this endpoint needs the runtime's owner credential",
				Hint: "send the owner credential as a bearer token (Go SDK: client.Options.OwnerToken); the runtime printed it at first start and keeps it in DATA/owner.token"})
			return
		}
		if !token.CheckOwner(cred, s.ownerToken) {
			writeError(w, &api.Error{Status: http.StatusForbidden, Code: api.CodeForbidden, Message: "the credential given is not this runtime's owner credential"})
			return
		}
		h(w, r)
	}
}

func (s *Server) handleIdentity(w http.ResponseWriter, r *http.Request) {
	var nonce []byte
	if n := r.URL.Query().Get("nonce"); n != "" {
		var err error
		if nonce, err = base64.RawURLEncoding.DecodeString(n); err != nil || len(nonce) < 16 || len(nonce) > 64 {
			writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: "nonce must be 16 to 64 bytes in unpadded base64url"})
			return
		}
	}
	id, err := s.Identity(r.Context(), nonce)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, id)
}

func (s *Server) handleDeploy(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBundleSize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, &api.Error{Status: http.StatusRequestEntityTooLarge, Code: api.CodeTooLarge, Message: fmt.Sprintf("bundle is larger than this runtime's limit of %d bytes", s.cfg.MaxBundleSize), Hint: "deploy a smaller bundle, or restart the runtime with a larger bundle limit (enclave.Config.MaxBundleSize)"})
			return
		}
		s.fail(w, r, err)
		return
	}
	b, err := bundle.Decode(body)
	if err != nil {
		hint := "deploy with `vouch deploy PATH`, which encodes a .wasm file or bundle folder"
		if errors.Is(err, bundle.ErrManifest) {
			hint = manifestHint
		}
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeInvalidBundle, Message: err.Error(), Hint: hint})
		return
	}
	rec, err := s.Deploy(r.Context(), b, r.URL.Query().Get("name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.metrics.deploys.Inc()
	writeJSON(w, http.StatusCreated, api.Deployed{FunctionID: rec.ID, FunctionChecksum: rec.Checksum, FunctionName: rec.Name})
	// The request's copies of the bundle, several times the module's
	// size, are garbage now; a runtime at rest would keep them resident.
	http.NewResponseController(w).Flush()
	debug.FreeOSMemory()
}

func (s *Server) describe(f *function) api.Function {
	out := api.Function{
		FunctionID:          f.rec.ID,
		FunctionName:        f.rec.Name,
		FunctionChecksum:    f.rec.Checksum,
		CreatedAt:           f.rec.CreatedAt,
		Size:                f.rec.Size,
		AllowPlaintextInput: f.manifest.AllowPlaintextInput,
		Statement:           f.statement,
		Limits: &api.Limits{
			Timeout:        f.limits.Timeout.String(),
			MemoryMiB:      f.limits.MemoryMiB,
			MaxInputBytes:  f.limits.MaxInputBytes,
			MaxOutputBytes: f.limits.MaxOutputBytes,
			MaxLogBytes:    f.limits.MaxLogBytes,
		},
	}
	out.Mode = string(f.mode())
	return out
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	recs, err := s.backend.Functions()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list := api.FunctionList{Functions: []api.Function{}}
	for _, rec := range recs {
		if f := s.fns.get(rec.ID); f != nil {
			list.Functions = append(list.Functions, s.describe(f))
		}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *function {
	f := s.fns.get(r.PathValue("id"))
	if f == nil {
		if s.rep != nil && !s.rep.serving.Load() {
			// A follower may not have applied a deploy the leader already
			// committed: only the leader says a function does not exist.
			s.rep.redirects.Inc()
			writeError(w, s.notLeader())
			return nil
		}
		s.fail(w, r, store.ErrNotFound)
	}
	return f
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	if f := s.lookup(w, r); f != nil {
		writeJSON(w, http.StatusOK, s.describe(f))
	}
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	if err := s.Delete(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// maxTTL is the longest function token the runtime mints.
const maxTTL = 365 * 24 * time.Hour

func (s *Server) handleMintToken(w http.ResponseWriter, r *http.Request) {
	f := s.lookup(w, r)
	if f == nil {
		return
	}
	var req api.TokenRequest
	if err := api.DecodeStrict(r.Body, 4<<10, &req); err != nil {
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: "malformed token request: " + err.Error()})
		return
	}
	if req.FunctionChecksum != f.rec.Checksum {
		writeError(w, &api.Error{Status: http.StatusConflict, Code: api.CodeChecksumMismatch,
			Message: fmt.Sprintf("function checksum mismatch: deployed %s, expected %s", f.rec.Checksum, req.FunctionChecksum),
			Hint:    "a token is minted only for the checksum you expect; check what you built with `vouch checksum PATH`"})
		return
	}
	ttl := 24 * time.Hour
	if req.Expiry != "" {
		d, err := time.ParseDuration(req.Expiry)
		if err != nil || d < time.Second || d > maxTTL {
			writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: fmt.Sprintf("expiry %q must be a duration between 1s and %s, such as 24h", req.Expiry, maxTTL)})
			return
		}
		ttl = d
	}
	tok, claims, err := s.issuer.Mint(f.rec.ID, f.rec.Checksum, ttl)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("minted function token", "function_id", f.rec.ID, "token_id", claims.ID, "expires_at", claims.ExpiresAt)
	writeJSON(w, http.StatusCreated, api.TokenResponse{FunctionID: f.rec.ID, FunctionChecksum: f.rec.Checksum, FunctionToken: tok, TokenID: claims.ID, ExpiresAt: claims.ExpiresAt})
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	var req api.RevokeRequest
	if err := api.DecodeStrict(r.Body, 8<<10, &req); err != nil {
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: "malformed revoke request: " + err.Error()})
		return
	}
	// Only tokens this runtime signed can be revoked; the signature check
	// ignores expiry and revocation so that any of ours is accepted.
	claims, err := token.Parse(req.FunctionToken)
	if err != nil {
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: "not a function token: " + err.Error()})
		return
	}
	if _, err := s.verifier.Verify(req.FunctionToken, claims.FunctionID); err != nil && !errors.Is(err, token.ErrExpired) && !errors.Is(err, token.ErrRevoked) && !errors.Is(err, token.ErrNotYetValid) {
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: "this runtime did not issue that token: " + err.Error()})
		return
	}
	if err := s.backend.Revoke(r.Context(), claims.ID, claims.ExpiresAt); err != nil {
		s.fail(w, r, err)
		return
	}
	s.tokens.forget()
	s.log.Info("revoked function token", "function_id", claims.FunctionID, "token_id", claims.ID)
	writeJSON(w, http.StatusOK, map[string]string{"revoked": claims.ID})
}

// invokeStateful runs a stateful function alone and commits its state
// before the receipt is signed, so no receipt covers an output whose state
// changes were lost. It returns the receipt's sequence number and time.
func (s *Server) invokeStateful(r *http.Request, f *function, compiled *sandbox.Function, input []byte, term uint64) (*sandbox.Result, uint64, time.Time, error) {
	f.stateMu.Lock()
	defer f.stateMu.Unlock()
	txn := s.newTxn(f.rec.ID, term)
	res, err := compiled.Invoke(r.Context(), input, txn)
	if err != nil {
		return nil, 0, time.Time{}, err // nothing was written
	}
	seq, at, err := txn.commit(r.Context())
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	return res, seq, at, nil
}

// authorizeRun checks the caller's function token, or the owner credential.
func (s *Server) authorizeRun(r *http.Request, f *function) *api.Error {
	cred := bearer(r)
	if strings.HasPrefix(cred, token.OwnerTokenPrefix) && token.CheckOwner(cred, s.ownerToken) {
		return nil
	}
	jti, err := s.tokens.verify(s.verifier, cred, f.rec.ID, s.now())
	if err == nil {
		if ok, wait := s.limiter.allow(jti, time.Now()); !ok {
			return &api.Error{Status: http.StatusTooManyRequests, Code: api.CodeRateLimited, RetryAfter: wait,
				Message: fmt.Sprintf("too many runs with this function token (limit %.0f/s)", s.limiter.rate),
				Hint:    "slow down, or give each client its own token"}
		}
		return nil
	}
	hint := "the runtime's owner mints a function token for this function and checksum (POST /v1/functions/{id}/tokens); send it as a bearer token (Go SDK: client.FunctionRef.Token)"
	if errors.Is(err, token.ErrMissing) {
		return &api.Error{Status: http.StatusUnauthorized, Code: api.CodeUnauthorized, Message: "function token missing: running a function needs a token for it", Hint: hint}
	}
	status := token.HTTPStatus(err)
	code := api.CodeUnauthorized
	if status == http.StatusForbidden {
		code = api.CodeForbidden
	}
	if status >= 500 {
		ae := s.internalError(r, "token check failed", err)
		ae.Message = "cannot check the function token right now: " + ae.Message
		return ae
	}
	return &api.Error{Status: status, Code: code, Message: "function token refused: " + strings.TrimPrefix(err.Error(), "token: "), Hint: hint}
}

func (s *Server) handleRun(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	f := s.lookup(w, r)
	if f == nil {
		return
	}
	// The expected checksum is compared before anything else is read.
	if want := r.Header.Get(api.HeaderChecksum); want != "" && want != f.rec.Checksum {
		s.metrics.refused.WithLabelValues("checksum_mismatch").Inc()
		writeError(w, &api.Error{Status: http.StatusConflict, Code: api.CodeChecksumMismatch,
			Message: fmt.Sprintf("function checksum mismatch: deployed %s, expected %s", f.rec.Checksum, want),
			Hint:    "the function deployed under this ID is not the one you expect; nothing was run"})
		return
	}
	if ae := s.authorizeRun(r, f); ae != nil {
		s.metrics.refused.WithLabelValues(ae.Code).Inc()
		writeError(w, ae)
		return
	}
	kind, ae := runBodyKind(r.Header)
	if ae != nil {
		s.metrics.refused.WithLabelValues(ae.Code).Inc()
		writeError(w, ae)
		return
	}
	session := kind == sessionBody
	sealed := kind != plainBody
	limit := f.limits.MaxInputBytes
	if sealed {
		limit += max(seal.InputOverhead, seal.SessionOverhead)
	}
	body, err := readInput(w, r, limit)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, &api.Error{Status: http.StatusRequestEntityTooLarge, Code: api.CodeTooLarge, Kind: string(sandbox.KindInputTooLarge),
				Message: fmt.Sprintf("input is larger than the function's limit of %d bytes", f.limits.MaxInputBytes),
				Hint:    failureHint(sandbox.KindInputTooLarge, f.limits, false)})
			return
		}
		s.fail(w, r, err)
		return
	}
	input := body
	var replyKey []byte
	var opened *seal.OpenedInput
	if sealed {
		if session {
			opened, err = s.keys.hpke.OpenSessionInput(f.rec.ID, f.rec.Checksum, body, s.sessions, s.replay, s.now())
		} else {
			opened, err = s.keys.hpke.OpenInput(f.rec.ID, f.rec.Checksum, body, s.replay, s.now())
		}
		if err != nil {
			ae := &api.Error{Status: http.StatusBadRequest, Code: api.CodeSealedInput, Message: strings.TrimPrefix(err.Error(), "seal: "),
				Hint: "seal each input afresh to the attested key, for this function ID and checksum"}
			switch {
			case errors.Is(err, seal.ErrReplay):
				ae.Code = api.CodeReplay
			case errors.Is(err, seal.ErrStaleBoot):
				// The runtime restarted since the client read its
				// identity; the SDK fetches it again and retries.
				ae.Status, ae.Code = http.StatusConflict, api.CodeStaleBoot
				ae.Hint = "the runtime restarted: fetch its identity (GET /v1/identity) again and seal the input for its new boot_id"
			}
			s.metrics.refused.WithLabelValues(ae.Code).Inc()
			writeError(w, ae)
			return
		}
		input, replyKey = opened.Input, opened.ReplyKey
	} else if !f.manifest.AllowPlaintextInput {
		s.metrics.refused.WithLabelValues(api.CodeSealedRequired).Inc()
		writeError(w, &api.Error{Status: http.StatusUnsupportedMediaType, Code: api.CodeSealedRequired,
			Message: "this function accepts only inputs sealed to the runtime's attested key",
			Hint:    "use `vouch run` or the Go SDK, which seal inputs; or set \"allow_plaintext_input\": true in the function's vouch.json"})
		return
	}
	compiled, err := s.instance(r.Context(), f)
	if err != nil {
		if le := (*loadError)(nil); errors.As(err, &le) {
			writeError(w, &api.Error{Status: http.StatusServiceUnavailable, Code: api.CodeUnavailable,
				Message: "the runtime could not load this function since it restarted",
				Hint:    "the runtime's log says why; deploy the function again if its module is refused, or retry if the cause has passed"})
			return
		}
		s.fail(w, r, err)
		return
	}
	var res *sandbox.Result
	var seq uint64
	var at time.Time
	term := s.leaderTerm()
	if compiled.Stateful() {
		res, seq, at, err = s.invokeStateful(r, f, compiled, input, term)
	} else {
		res, err = compiled.Invoke(r.Context(), input, nil)
	}
	if err != nil {
		var fe *sandbox.Error
		if errors.As(err, &fe) {
			s.metrics.failures.WithLabelValues(string(fe.Kind)).Inc()
			status := http.StatusUnprocessableEntity
			if fe.Kind == sandbox.KindInputTooLarge {
				status = http.StatusRequestEntityTooLarge
			}
			writeError(w, functionFailure(fe, f.limits, sealed, status))
			return
		}
		s.fail(w, r, err)
		return
	}
	if !compiled.Stateful() {
		if seq, at, err = s.seq.Next(r.Context(), s.now, nil); err != nil {
			s.fail(w, r, fmt.Errorf("receipt sequence: %w", err))
			return
		}
	}
	// A replica signs only what state at least as new as the leader's
	// commit index allows: it checks that it still leads.
	if err := s.readIndex(r.Context(), term); err != nil {
		s.fail(w, r, err)
		return
	}
	in := sha256.Sum256(input)
	out := sha256.Sum256(res.Output)
	rc := receipt.Receipt{
		FunctionID:       f.rec.ID,
		FunctionChecksum: f.rec.Checksum,
		InputSHA256:      hexDigest(&in),
		OutputSHA256:     hexDigest(&out),
		Seq:              seq,
		Time:             at,
	}
	if err := rc.Sign(s.keys.receipt); err != nil {
		s.fail(w, r, err)
		return
	}
	result := api.RunResult{Receipt: rc}
	if opened != nil && opened.SessionReply() {
		if result.SealedOutput, err = opened.SealSessionOutput(in, res.Output); err != nil {
			s.fail(w, r, err)
			return
		}
	} else if replyKey != nil {
		if result.SealedOutput, err = seal.SealOutput(replyKey, f.rec.ID, f.rec.Checksum, in, res.Output); err != nil {
			s.fail(w, r, err)
			return
		}
	} else {
		result.Output = res.Output
	}
	if !sealed {
		// The log is the function's stderr: it may hold anything the
		// input held, so it is returned only when the input travelled in
		// the clear. The receipt does not cover it.
		result.Log = string(res.Log)
	}
	s.metrics.runs.Inc()
	s.metrics.runSeconds.Observe(time.Since(start).Seconds())
	s.metrics.wasmSeconds.Observe(res.Elapsed.Seconds())
	writeRunResult(w, &result)
}

// hexDigest is hex.EncodeToString of a digest, with one allocation.
func hexDigest(sum *[32]byte) string {
	var b [64]byte
	hex.Encode(b[:], sum[:])
	return string(b[:])
}

// bodyKind is how a run request's body travels.
type bodyKind int

const (
	plainBody bodyKind = iota
	sealedBody
	sessionBody
)

// mediaTypeHint is the hint of a refused Content-Type.
var mediaTypeHint = fmt.Sprintf("send %s (a session, as `vouch run` and the SDK do) or %s (sealed inputs), or %s for a plaintext input (docs/API.md, \"Headers\")",
	api.ContentTypeSession, api.ContentTypeSealed, api.ContentTypePlain)

// plainTypes are the media types of a plaintext run body.
var plainTypes = []string{api.ContentTypePlain, "application/json", "text/plain"}

// runBodyKind reads a run request's Content-Type. The media type decides,
// compared case-insensitively; its parameters are parsed and ignored. No
// header means plaintext. A malformed, repeated or unknown type is refused
// rather than guessed at, so a sealed body is never run as plaintext.
func runBodyKind(h http.Header) (bodyKind, *api.Error) {
	values := h.Values("Content-Type")
	if len(values) == 0 {
		return plainBody, nil
	}
	refuse := func(msg string) (bodyKind, *api.Error) {
		return plainBody, &api.Error{Status: http.StatusUnsupportedMediaType, Code: api.CodeUnsupportedMedia, Message: msg, Hint: mediaTypeHint}
	}
	if len(values) > 1 {
		return refuse(fmt.Sprintf("the request has %d Content-Type headers; want one", len(values)))
	}
	// What the SDK sends, exactly: the answer ParseMediaType would give.
	switch values[0] {
	case api.ContentTypeSession:
		return sessionBody, nil
	case api.ContentTypeSealed:
		return sealedBody, nil
	}
	mt, _, err := mime.ParseMediaType(values[0])
	if err != nil {
		return refuse(fmt.Sprintf("malformed Content-Type %q: %v", clip(values[0]), err))
	}
	switch mt { // ParseMediaType lower-cases the type
	case api.ContentTypeSession:
		return sessionBody, nil
	case api.ContentTypeSealed:
		return sealedBody, nil
	}
	if slices.Contains(plainTypes, mt) {
		return plainBody, nil
	}
	return refuse(fmt.Sprintf("content type %q is not one a run request takes", clip(mt)))
}

// clip cuts a header value for an error message.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// manifestHint is the hint for a bundle whose vouch.json is invalid.
var manifestHint = fmt.Sprintf("fix the function's vouch.json: every field is optional, unknown fields are refused, and limits are timeout (a duration such as \"5s\", at most %s), memory_mib (at most %d), max_input_bytes, max_output_bytes and max_log_bytes (docs/FORMATS.md, \"Manifest\")",
	bundle.MaxLimits.Timeout, bundle.MaxLimits.MemoryMiB)

// failureHint says which vouch.json limit to raise for a failure of kind,
// or what else to do; "" when there is nothing useful to say.
func failureHint(kind sandbox.Kind, l bundle.Limits, sealed bool) string {
	raise := func(field string, now, most any) string {
		return fmt.Sprintf("if the function needs more, raise \"limits\": {\"%s\": …} in its vouch.json (now %v, at most %v) and deploy it again", field, now, most)
	}
	switch kind {
	case sandbox.KindTimeout:
		return raise("timeout", l.Timeout, bundle.MaxLimits.Timeout)
	case sandbox.KindOutOfMemory:
		return raise("memory_mib", l.MemoryMiB, bundle.MaxLimits.MemoryMiB)
	case sandbox.KindOutputTooLarge:
		return raise("max_output_bytes", l.MaxOutputBytes, bundle.MaxLimits.MaxOutputBytes)
	case sandbox.KindInputTooLarge:
		return "send a smaller input, or " + raise("max_input_bytes", l.MaxInputBytes, bundle.MaxLimits.MaxInputBytes)
	}
	if sealed {
		return "the function's own message and log are not returned for sealed inputs; to debug it, run it on a test input sent in plaintext (\"allow_plaintext_input\": true in a test deployment's vouch.json)"
	}
	return ""
}

// functionFailure is the API error for a failed invocation. When the input
// was sealed, what the function wrote (its log, its error message, the
// last line of its stderr, its exit code) stays inside the runtime: the
// caller gets the kind and a message the runtime wrote.
//
// A refusal (api.RefusalPrefix) is the exception: its code, from a fixed
// public list, and that code's fixed text pass even for sealed inputs.
func functionFailure(fe *sandbox.Error, l bundle.Limits, sealed bool, status int) *api.Error {
	ae := &api.Error{Status: status, Code: api.CodeFunctionFailed, Kind: string(fe.Kind), Message: fe.Message, Hint: failureHint(fe.Kind, l, sealed)}
	if code, detail, ok := refusal(fe); ok {
		ae.Refusal = code
		ae.Message = fmt.Sprintf("function refused its input (%s): %s", code, api.RefusalTexts[code])
		if sealed {
			ae.Message += "; details withheld: the input was sealed"
			ae.Hint = "the function's detail is withheld because the input was sealed: send a test input in plaintext to read it (`vouch run --plaintext`, for a function whose vouch.json sets \"allow_plaintext_input\": true)"
		} else if detail != "" {
			ae.Message = fmt.Sprintf("function refused its input (%s): %s", code, detail)
		}
	}
	if !sealed {
		ae.Log = string(fe.Log)
		return ae
	}
	switch fe.Kind {
	case sandbox.KindTimeout, sandbox.KindOutOfMemory, sandbox.KindInputTooLarge, sandbox.KindOutputTooLarge:
		// The runtime's own words, about the function's limits only.
	case sandbox.KindExit, sandbox.KindFailed:
		if ae.Refusal != "" {
			break // the code and its fixed text only
		}
		if fe.Kind == sandbox.KindFailed {
			ae.Message = "function reported an error (its message is withheld: the input was sealed)"
			break
		}
		ae.Message = "function exited with a non-zero code (details withheld: the input was sealed)"
	case sandbox.KindTrap:
		ae.Message = "function trapped (details withheld: the input was sealed)"
	default:
		ae.Message = fmt.Sprintf("function failed (%s; details withheld: the input was sealed)", fe.Kind)
	}
	return ae
}

// refusal reads a refusal from a failed function: a reactor's error
// message, or a command's last line of stderr before a non-zero exit.
func refusal(fe *sandbox.Error) (code, detail string, ok bool) {
	switch fe.Kind {
	case sandbox.KindFailed:
		return api.ParseRefusal(fe.Message)
	case sandbox.KindExit:
		if fe.ExitCode == 0 {
			return "", "", false
		}
		last := strings.TrimSpace(string(fe.Log))
		if i := strings.LastIndexByte(last, '\n'); i >= 0 {
			last = last[i+1:]
		}
		return api.ParseRefusal(last)
	}
	return "", "", false
}
