package enclave

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/enclave/internal/fsm"
	"github.com/vouch-dev/vouch/enclave/internal/join"
	"github.com/vouch-dev/vouch/enclave/internal/replica"
	"github.com/vouch-dev/vouch/enclave/internal/servicekeys"
	"github.com/vouch-dev/vouch/internal/store"
)

// ReplicaConfig makes a Server one replica of a replicated runtime
// (docs/ARCHITECTURE.md, "Replicated runtime"). The first replica bootstraps the service; the
// others join through a running member.
type ReplicaConfig struct {
	// ID is this replica's ID (api.ValidReplicaID), also its raft server ID.
	ID string
	// RaftListener accepts raft traffic; the server owns it from Open on.
	RaftListener net.Listener
	// Advertise is the raft HOST:PORT the other replicas dial; empty means
	// RaftListener's address.
	Advertise string
	// APIURL is this replica's advertised API base URL, which followers
	// name in not_leader redirects.
	APIURL string
	// Bootstrap creates a new service (new service keys, a one-replica
	// configuration) when the data directory holds no raft state yet.
	Bootstrap bool
	// Join is a running member's API URL to join through.
	Join string
	// JoinAllowPCRs lists measurements a joiner may have besides this
	// replica's own (the service's join allowlist).
	JoinAllowPCRs []map[int][]byte
	// Timing tunes raft's failure detection; zero fields take the
	// replica package's defaults.
	Timing ReplicaTiming
	// SnapshotThreshold and SnapshotInterval, when not zero, are how many
	// new log entries make a snapshot and how often raft checks (for
	// tests; zero takes raft's defaults).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
}

// ReplicaTiming holds raft's failure-detection timeouts.
type ReplicaTiming struct {
	Heartbeat, Election, LeaderLease, CommitTimeout time.Duration
}

// serviceSecretFile holds a SIMULATED replica's 32-byte service secret;
// with the key files it lets a simulated service restart.
const serviceSecretFile = "service_secret"

// raftDir is the replica's raft directory under DataDir.
const raftDir = "raft"

// replicaState is what a Server holds in replicated mode.
type replicaState struct {
	cfg     ReplicaConfig
	keys    *servicekeys.Keys
	fsm     *fsm.FSM
	node    *replica.Node
	member  *join.Member
	serving atomic.Bool // leads, and has caught up since it gained leadership
	// servingTerm is the raft term in which this replica last became
	// ready to serve; it signs only while raft's term is still that one.
	servingTerm atomic.Uint64

	pendingMu sync.Mutex
	pending   map[string]*function // compiled deploys waiting for their entry

	stop       chan struct{}
	done       chan struct{} // closed when watchLeadership ends
	started    bool          // watchLeadership runs
	tamperOnce sync.Once
	redirects  prometheus.Counter
}

// replicatedBackend reads the state machine and writes through the log.
type replicatedBackend struct {
	fsm  *fsm.FSM
	node func() *replica.Node
}

func (b replicatedBackend) Functions() ([]*store.Function, error) { return b.fsm.Functions() }
func (b replicatedBackend) Bundle(id string) ([]byte, error)      { return b.fsm.Bundle(id) }
func (b replicatedBackend) StateGet(fid string, key []byte) ([]byte, bool, error) {
	return b.fsm.StateGet(fid, key)
}
func (b replicatedBackend) Counter(fid string, name []byte) (int64, error) {
	return b.fsm.Counter(fid, name)
}
func (b replicatedBackend) SeqCeiling() (uint64, error)      { return b.fsm.SeqCeiling() }
func (b replicatedBackend) Revoked(jti string) (bool, error) { return b.fsm.Revoked(jti) }

// apply proposes c and returns the state machine's answer; a refusal comes
// back as the error.
func (b replicatedBackend) apply(ctx context.Context, c *fsm.Command) (any, error) {
	enc, err := c.Encode()
	if err != nil {
		return nil, err
	}
	n := b.node()
	if n == nil {
		return nil, replica.ErrNotLeader
	}
	res, err := n.Apply(ctx, enc)
	if err != nil {
		return nil, err
	}
	if e, ok := res.(error); ok {
		return nil, e
	}
	return res, nil
}

func (b replicatedBackend) PutFunction(ctx context.Context, rec *store.Function, enc []byte) error {
	_, err := b.apply(ctx, &fsm.Command{Type: fsm.TypeDeploy, Deploy: &fsm.Deploy{Function: *rec, Bundle: enc}})
	return err
}

func (b replicatedBackend) DeleteFunction(ctx context.Context, id string) error {
	_, err := b.apply(ctx, &fsm.Command{Type: fsm.TypeDelete, Delete: &fsm.Delete{FunctionID: id}})
	return err
}

func (b replicatedBackend) CommitState(ctx context.Context, fid string, writes []store.StateWrite, counters map[string]int64, seqCeiling, leaderTerm uint64) error {
	c := &fsm.Commit{FunctionID: fid, SeqCeiling: seqCeiling, LeaderTerm: leaderTerm}
	for _, w := range writes {
		c.Writes = append(c.Writes, fsm.Write{Key: w.Key, Value: w.Value})
	}
	for name, v := range counters {
		c.Counters = append(c.Counters, fsm.CounterValue{Name: []byte(name), Value: v})
	}
	_, err := b.apply(ctx, &fsm.Command{Type: fsm.TypeCommit, Commit: c})
	return err
}

func (b replicatedBackend) RaiseSeqCeiling(ctx context.Context, c uint64) error {
	_, err := b.apply(ctx, &fsm.Command{Type: fsm.TypeSeq, Seq: &fsm.Seq{Ceiling: c}})
	return err
}

func (b replicatedBackend) Revoke(ctx context.Context, jti string, expires time.Time) error {
	_, err := b.apply(ctx, &fsm.Command{Type: fsm.TypeRevoke, Revoke: &fsm.Revoke{JTI: jti, Expires: expires.Unix()}})
	return err
}

func (b replicatedBackend) PruneRevocations(ctx context.Context, now time.Time) (int, error) {
	res, err := b.apply(ctx, &fsm.Command{Type: fsm.TypePrune, Prune: &fsm.Prune{Now: now.Unix()}})
	n, _ := res.(int)
	return n, err
}

func (b replicatedBackend) Close() error { return nil }

// applyCommand proposes a command of the replica's own (directory
// entries); only a replica's backend is a replicatedBackend.
func (s *Server) applyCommand(ctx context.Context, c *fsm.Command) (any, error) {
	return s.backend.(replicatedBackend).apply(ctx, c)
}

// checkReplicaConfig checks what Open cannot do without.
func checkReplicaConfig(rc *ReplicaConfig) error {
	if !api.ValidReplicaID(rc.ID) {
		return fmt.Errorf("enclave: replica ID %q must be 1-64 characters of a-z 0-9 . _ -", rc.ID)
	}
	if rc.RaftListener == nil {
		return errors.New("enclave: replicated mode needs Config.Replica.RaftListener")
	}
	if rc.APIURL == "" {
		return errors.New("enclave: replicated mode needs Config.Replica.APIURL, the URL other replicas redirect clients to")
	}
	if rc.Bootstrap && rc.Join != "" {
		return errors.New("enclave: a replica either bootstraps a new service or joins one, not both")
	}
	if rc.Advertise == "" {
		rc.Advertise = rc.RaftListener.Addr().String()
	}
	return nil
}

// openReplica opens the replicated half of a Server: the service keys, the
// state machine, the raft node and the join member. s.engine, s.loader,
// the caches and the attester are ready.
func (s *Server) openReplica(ctx context.Context) error {
	rc := *s.cfg.Replica
	if err := checkReplicaConfig(&rc); err != nil {
		if rc.RaftListener != nil {
			rc.RaftListener.Close()
		}
		return err
	}
	rs := &replicaState{cfg: rc, pending: map[string]*function{}, stop: make(chan struct{}), done: make(chan struct{})}
	s.rep = rs
	sk, created, err := s.serviceKeys(ctx, &rc)
	if err != nil {
		rc.RaftListener.Close()
		return err
	}
	rs.keys = sk
	s.keys = &keys{receipt: sk.Receipt, token: sk.Token, hpke: sk.HPKE}
	if s.cfg.OwnerToken != "" && s.cfg.OwnerToken != sk.OwnerToken {
		rc.RaftListener.Close()
		return errors.New("enclave: a replica's owner credential is the service's; do not set Config.OwnerToken (--owner-token-file)")
	}
	s.ownerToken, s.ownerNew = sk.OwnerToken, created
	rs.fsm = fsm.New(s.observe)
	var node atomic.Pointer[replica.Node]
	s.backend = replicatedBackend{fsm: rs.fsm, node: node.Load}
	// Serving starts only once this replica leads and has caught up.
	s.seq = newSequencer(0, s.backend.RaiseSeqCeiling)
	rs.member = join.NewMember(join.Policy{Attester: s.cfg.Attester, AllowPCRs: rc.JoinAllowPCRs, Now: s.now}, sk,
		func(ctx context.Context, nonce []byte) ([]byte, error) {
			id, err := s.Identity(ctx, nonce)
			if err != nil {
				return nil, err
			}
			return id.Attestation, nil
		})
	dir := filepath.Join(s.cfg.DataDir, raftDir)
	n, err := replica.Open(replica.Config{
		ID: rc.ID, Dir: dir, Listener: rc.RaftListener, Advertise: rc.Advertise, Keys: sk, FSM: rs.fsm,
		Bootstrap: rc.Bootstrap,
		Timing: replica.Timing{Heartbeat: rc.Timing.Heartbeat, Election: rc.Timing.Election,
			LeaderLease: rc.Timing.LeaderLease, CommitTimeout: rc.Timing.CommitTimeout},
		Snapshots:  replica.Snapshots{Threshold: rc.SnapshotThreshold, Interval: rc.SnapshotInterval},
		Logger:     s.log.With("component", "raft"),
		Registerer: s.metrics.reg,
	})
	if err != nil {
		rc.RaftListener.Close()
		return fmt.Errorf("enclave: replica: %w", err)
	}
	rs.node = n
	node.Store(n)
	rs.redirects = prometheus.NewCounter(prometheus.CounterOpts{Name: "vouch_replica_redirects_total", Help: "Requests a follower answered with not_leader or no_leader."})
	s.metrics.register(rs.redirects)
	s.log.Info("replica started", "replica_id", rc.ID, "raft_addr", n.Addr(), "api_url", rc.APIURL, "key_id", sk.KeyID())
	return nil
}

// startReplica starts following leadership changes, once the server is
// complete.
func (s *Server) startReplica() {
	s.rep.started = true
	go s.watchLeadership()
}

// serviceKeys returns the service keys and whether they were created now:
// stored ones (a SIMULATED replica that restarts), new ones (bootstrap), or
// the service's, received through the join protocol.
func (s *Server) serviceKeys(ctx context.Context, rc *ReplicaConfig) (*servicekeys.Keys, bool, error) {
	simulated := s.cfg.Attester.Platform() == attest.PlatformSimulated
	fresh, err := emptyDir(filepath.Join(s.cfg.DataDir, raftDir))
	if err != nil {
		return nil, false, fmt.Errorf("enclave: %w", err)
	}
	var stored *servicekeys.Keys
	if simulated {
		stored, err = loadServiceKeys(s.cfg.DataDir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("enclave: %w", err)
		}
		// A replica re-synced with an empty raft directory joins again
		// (to be added back as a voter); otherwise it restarts as it was.
		if stored != nil && (rc.Join == "" || !fresh) {
			s.log.Warn("SIMULATED: service keys loaded from the data directory; a real enclave keeps them in memory only", "key_id", stored.KeyID())
			return stored, false, nil
		}
	}
	var k *servicekeys.Keys
	created := false
	switch {
	case rc.Join != "":
		j := &join.Joiner{Attester: s.cfg.Attester, ReplicaID: rc.ID, RaftAddr: rc.Advertise, APIURL: rc.APIURL}
		if k, err = joinService(ctx, j, rc.Join, s.log); err != nil {
			return nil, false, fmt.Errorf("enclave: joining through %s: %w", rc.Join, err)
		}
		s.log.Info("joined the service", "member", rc.Join, "key_id", k.KeyID())
	case rc.Bootstrap:
		if !fresh {
			return nil, false, fmt.Errorf("enclave: %s holds raft state but this replica has no service keys: join the service again (--join URL) after wiping it, or bootstrap in an empty data directory", filepath.Join(s.cfg.DataDir, raftDir))
		}
		if k, err = servicekeys.Generate(); err != nil {
			return nil, false, err
		}
		created = true
		s.log.Info("bootstrapping a new service", "key_id", k.KeyID())
	default:
		return nil, false, errors.New("enclave: this replica has no service keys: bootstrap a new service (--bootstrap) or join a running one (--join URL)")
	}
	if stored != nil {
		if stored.KeyID() != k.KeyID() {
			return nil, false, fmt.Errorf("enclave: %s holds the keys of service %s, but %s belongs to service %s: give this replica a new --data directory", s.cfg.DataDir, stored.KeyID(), rc.Join, k.KeyID())
		}
		return stored, false, nil
	}
	if simulated {
		if err := saveServiceKeys(s.cfg.DataDir, k); err != nil {
			return nil, false, fmt.Errorf("enclave: %w", err)
		}
		s.log.Warn("SIMULATED: service keys kept in the data directory so that the simulated service can restart", "dir", s.cfg.DataDir)
	}
	return k, created, nil
}

// joinService joins through memberURL, retrying while the service has no
// leader (an election under way), until ctx ends or 60 s pass.
func joinService(ctx context.Context, j *join.Joiner, memberURL string, log interface {
	Info(string, ...any)
}) (*servicekeys.Keys, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		k, err := j.Join(ctx, memberURL)
		var ae *api.Error
		if err == nil || !errors.As(err, &ae) || ae.Code != api.CodeNoLeader {
			return k, err
		}
		log.Info("the service has no leader yet; retrying the join", "member", memberURL)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func emptyDir(dir string) (bool, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	return len(ents) == 0, err
}

// loadServiceKeys reads a SIMULATED replica's service keys: the key files
// a single runtime keeps, plus service_secret. fs.ErrNotExist when there is
// no service_secret.
func loadServiceKeys(dir string) (*servicekeys.Keys, error) {
	secret, err := readSecret(filepath.Join(dir, serviceSecretFile))
	if err != nil {
		return nil, err
	}
	if len(secret) != servicekeys.SecretLen {
		return nil, fmt.Errorf("%s: want %d bytes", filepath.Join(dir, serviceSecretFile), servicekeys.SecretLen)
	}
	for _, f := range []string{receiptKeyFile, tokenKeyFile, hpkeKeyFile, ownerTokenFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return nil, fmt.Errorf("%s exists but %s does not: the data directory is incomplete", serviceSecretFile, f)
		}
	}
	k, err := loadKeys(dir)
	if err != nil {
		return nil, err
	}
	owner, err := readOwnerToken(filepath.Join(dir, ownerTokenFile))
	if err != nil {
		return nil, err
	}
	return &servicekeys.Keys{Receipt: k.receipt, Token: k.token, HPKE: k.hpke, OwnerToken: owner, Secret: secret}, nil
}

// saveServiceKeys writes a SIMULATED replica's service keys; it refuses to
// overwrite any key file (a single runtime's data directory, say).
func saveServiceKeys(dir string, k *servicekeys.Keys) error {
	rk, err := ed25519PEM(k.Receipt)
	if err != nil {
		return err
	}
	tk, err := ed25519PEM(k.Token)
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
	}{
		{receiptKeyFile, rk}, {tokenKeyFile, tk}, {hpkeKeyFile, x25519PEM(k)},
		{ownerTokenFile, []byte(k.OwnerToken + "\n")}, {serviceSecretFile, k.Secret},
	}
	for _, f := range files {
		if err := createSecret(filepath.Join(dir, f.name), f.data); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s already exists: this data directory belongs to another runtime; give the replica a new --data directory", filepath.Join(dir, f.name))
			}
			return err
		}
	}
	return nil
}

// leaderOnly serves h on the leader; another replica answers not_leader
// (421) with the leader's URL, or no_leader (503).
func (s *Server) leaderOnly(h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.Replica == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.rep.serving.Load() {
			s.rep.redirects.Inc()
			writeError(w, s.notLeader())
			return
		}
		h(w, r)
	}
}

// notLeader is the answer of a replica that does not serve as leader now.
func (s *Server) notLeader() *api.Error {
	id, _ := s.rep.node.Leader()
	if id == "" || id == s.rep.cfg.ID {
		msg := "the replicas have no leader right now (an election is under way, or too few replicas run)"
		if id != "" {
			msg = "this replica was just elected leader and is catching up"
		}
		return &api.Error{Status: http.StatusServiceUnavailable, Code: api.CodeNoLeader, RetryAfter: 500 * time.Millisecond,
			Message: msg, Hint: "retry shortly"}
	}
	r, ok := s.rep.fsm.Replica(id)
	if !ok {
		return &api.Error{Status: http.StatusServiceUnavailable, Code: api.CodeNoLeader, RetryAfter: 500 * time.Millisecond,
			Message: fmt.Sprintf("replica %s leads but its API URL is not known here yet", id), Hint: "retry shortly"}
	}
	return &api.Error{Status: http.StatusMisdirectedRequest, Code: api.CodeNotLeader, LeaderURL: r.APIURL,
		Message: fmt.Sprintf("replica %s does not lead; the leader is replica %s at %s", s.rep.cfg.ID, id, r.APIURL),
		Hint:    "send the request to the leader (the Go SDK follows leader_url)"}
}

// readIndex checks, before a replica signs, that it still leads and has
// applied everything committed when the request arrived.
// term is the raft term the run began in (leaderTerm); a run that began
// under an earlier leadership of this replica is not signed.
func (s *Server) readIndex(ctx context.Context, term uint64) error {
	if s.rep == nil {
		return nil
	}
	if err := s.rep.node.ReadIndex(ctx); err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	if now := s.rep.node.Term(); now != term || s.rep.servingTerm.Load() != term || !s.rep.serving.Load() {
		return fmt.Errorf("read index: the run began in raft term %d, this replica now serves term %d: %w", term, now, replica.ErrNotLeader)
	}
	return nil
}

// leaderTerm is the raft term this replica serves in, read when a run
// begins; 0 for a single runtime.
func (s *Server) leaderTerm() uint64 {
	if s.rep == nil {
		return 0
	}
	return s.rep.servingTerm.Load()
}

// watchLeadership follows raft's leadership changes: a replica that gains
// leadership catches up, then serves; one that loses it stops at once.
func (s *Server) watchLeadership() {
	defer close(s.rep.done)
	ch := s.rep.node.LeadershipChanges()
	if s.rep.node.IsLeader() {
		s.becomeLeader()
	}
	for {
		select {
		case <-s.rep.stop:
			return
		case lead, ok := <-ch:
			if !ok {
				return
			}
			if lead {
				s.becomeLeader()
			} else if s.rep.serving.Swap(false) {
				s.log.Info("lost leadership; no longer serving runs and writes", "replica_id", s.rep.cfg.ID)
			}
		}
	}
}

// becomeLeader makes a new leader ready: every entry of earlier terms
// applied (a barrier), the sequencer above every committed ceiling, the
// volatile state cleared as after a restart, its own directory entry
// current. Only then does it serve.
func (s *Server) becomeLeader() {
	rs := s.rep
	rs.serving.Store(false)
	term := rs.node.Term()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-rs.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		bctx, bcancel := context.WithTimeout(ctx, 10*time.Second)
		err := rs.node.Barrier(bctx)
		bcancel()
		if err == nil {
			break
		}
		if !rs.node.IsLeader() || ctx.Err() != nil {
			return
		}
		s.log.Warn("leader barrier failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	ceiling, _ := rs.fsm.SeqCeiling()
	s.seq.reset(ceiling)
	s.volatile.clear()
	want := fsm.Replica{ID: rs.cfg.ID, APIURL: rs.cfg.APIURL, RaftAddr: rs.node.Addr()}
	if got, ok := rs.fsm.Replica(rs.cfg.ID); !ok || got != want {
		if _, err := s.applyCommand(ctx, &fsm.Command{Type: fsm.TypeReplica, Replica: &want}); err != nil {
			s.log.Warn("cannot record this replica in the directory", "err", err)
			return
		}
	}
	if rs.fsm.Expired(s.now()) > 0 {
		if n, err := s.backend.PruneRevocations(ctx, s.now()); err == nil && n > 0 {
			s.log.Info("pruned revocations of expired tokens", "count", n)
		}
	}
	if !rs.node.IsLeader() || rs.node.Term() != term {
		return // another change follows; watchLeadership handles it
	}
	rs.servingTerm.Store(term)
	rs.serving.Store(true)
	s.log.Info("serving as leader", "replica_id", rs.cfg.ID, "seq_from", ceiling+1)
}

// observe learns of applied deploys, deletes, revocations and restores on
// every replica (fsm.Observer; on raft's apply goroutine, so it never
// waits for a load or a close).
func (s *Server) observe(e fsm.Event) {
	switch e.Type {
	case fsm.Deployed:
		s.registerApplied(e.Function)
	case fsm.Deleted:
		s.dropFunction(e.FunctionID)
	case fsm.Revoked:
		s.tokens.forget()
	case fsm.Restored:
		s.tokens.forget()
		recs, _ := s.rep.fsm.Functions()
		keep := map[string]string{}
		for _, rec := range recs {
			keep[rec.ID] = rec.Checksum
		}
		for _, f := range s.fns.all() {
			if sum, ok := keep[f.rec.ID]; !ok || sum != f.rec.Checksum {
				s.dropFunction(f.rec.ID)
			}
		}
		for _, rec := range recs {
			if s.fns.get(rec.ID) == nil {
				s.registerApplied(rec)
			}
		}
	}
}

// registerApplied makes an applied deploy runnable here: the leader that
// proposed it uses the module it compiled; other replicas compile it in
// the background, so that they can serve at once if they come to lead.
func (s *Server) registerApplied(rec *store.Function) {
	s.rep.pendingMu.Lock()
	f := s.rep.pending[rec.ID]
	delete(s.rep.pending, rec.ID)
	s.rep.pendingMu.Unlock()
	if f != nil {
		s.fns.put(f)
		return
	}
	enc, err := s.rep.fsm.Bundle(rec.ID)
	if err == nil {
		var b *bundle.Bundle
		if b, err = bundle.Decode(enc); err == nil {
			if f, err = s.newFunction(rec, b); err == nil {
				s.fns.put(f)
				f.mu.Lock()
				s.loader.start(f)
				f.mu.Unlock()
				return
			}
		}
	}
	s.log.Error("cannot register an applied deploy", "function_id", rec.ID, "err", err)
}

func (s *Server) dropFunction(id string) {
	if f := s.fns.remove(id); f != nil {
		go f.close(context.Background())
	}
	s.volatile.drop(id)
}

// addPending hands f's compiled module to the observer for when its deploy
// applies; the returned func takes it back if it did not.
func (rs *replicaState) addPending(ctx context.Context, f *function) func() {
	rs.pendingMu.Lock()
	rs.pending[f.rec.ID] = f
	rs.pendingMu.Unlock()
	return func() {
		rs.pendingMu.Lock()
		g := rs.pending[f.rec.ID]
		delete(rs.pending, f.rec.ID)
		rs.pendingMu.Unlock()
		if g != nil {
			g.close(ctx)
		}
	}
}

// tampered answers 503 while this replica's raft files failed
// authentication.
func (s *Server) tampered(w http.ResponseWriter) bool {
	if s.rep == nil || s.rep.node == nil {
		return false
	}
	err := s.rep.node.Tampered()
	if err == nil {
		return false
	}
	s.rep.serving.Store(false)
	s.rep.tamperOnce.Do(func() {
		s.log.Error("this replica's raft files failed authentication: it stops serving and must be re-synced (wipe its raft directory and join again)", "replica_id", s.rep.cfg.ID, "err", err)
	})
	writeError(w, &api.Error{Status: http.StatusServiceUnavailable, Code: api.CodeUnavailable,
		Message: fmt.Sprintf("replica %s stopped serving: its raft files failed authentication (tampered or corrupted)", s.rep.cfg.ID),
		Hint:    "the operator must re-sync this replica: wipe DATA/raft and join it again (--join URL); use another replica meanwhile"})
	return true
}

func (s *Server) handleReplicas(w http.ResponseWriter, r *http.Request) {
	if s.rep == nil {
		writeError(w, &api.Error{Status: http.StatusNotFound, Code: api.CodeNoRoute,
			Message: "this runtime is a single runtime, not a replicated service: it has no replicas",
			Hint:    "start replicas with `vouch enclave --replica-id ID --raft-listen HOST:PORT --bootstrap` or `--join URL`"})
		return
	}
	st := s.rep.node.Status()
	out := api.ReplicaSet{Replicas: []api.ReplicaMember{}, Leader: st.LeaderID, Self: s.rep.cfg.ID, State: st.State,
		LastIndex: st.LastIndex, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, Term: st.Term}
	for _, srv := range st.Servers {
		m := api.ReplicaMember{ID: srv.ID, RaftAddr: srv.Address, Suffrage: srv.Suffrage, Leader: srv.ID == st.LeaderID}
		if d, ok := s.rep.fsm.Replica(srv.ID); ok {
			m.APIURL = d.APIURL
		}
		out.Replicas = append(out.Replicas, m)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleRemoveReplica(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !api.ValidReplicaID(id) {
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: fmt.Sprintf("replica ID %q must be 1-64 characters of a-z 0-9 . _ -", id)})
		return
	}
	if id == s.rep.cfg.ID {
		writeError(w, &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: "the leader cannot remove itself",
			Hint: "stop this replica; once another leads, remove it there"})
		return
	}
	if err := s.rep.node.Remove(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.applyCommand(r.Context(), &fsm.Command{Type: fsm.TypeReplicaRemoved, ReplicaRemoved: &fsm.ReplicaRemoved{ID: id}}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("removed replica", "replica_id", id)
	w.WriteHeader(http.StatusNoContent)
}

// admit is the join handler's admission, on the leader: it records the
// joiner in the replica directory, then adds it as a voter in the
// background.
func (s *Server) admit(ctx context.Context, a *join.Admission) error {
	if !s.rep.serving.Load() {
		return s.notLeader()
	}
	for _, srv := range s.rep.node.Status().Servers {
		if srv.ID == a.ReplicaID && srv.Address != a.RaftAddr {
			return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest,
				Message: fmt.Sprintf("replica %s is already a member at raft address %s, not %s", a.ReplicaID, srv.Address, a.RaftAddr),
				Hint:    "give the new replica another --replica-id, or remove the old one first (DELETE /v1/replicas/{id})"}
		}
	}
	rec := fsm.Replica{ID: a.ReplicaID, APIURL: a.APIURL, RaftAddr: a.RaftAddr}
	if _, err := s.applyCommand(ctx, &fsm.Command{Type: fsm.TypeReplica, Replica: &rec}); err != nil {
		return err
	}
	s.log.Info("admitted replica", "replica_id", a.ReplicaID, "raft_addr", a.RaftAddr, "api_url", a.APIURL)
	go func() {
		actx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.rep.node.AddVoter(actx, a.ReplicaID, a.RaftAddr); err != nil {
			s.log.Error("cannot add the admitted replica as a voter", "replica_id", a.ReplicaID, "err", err)
			return
		}
		s.log.Info("added replica as a voter", "replica_id", a.ReplicaID)
	}()
	return nil
}

// joinHandler serves the join protocol's endpoints.
func (s *Server) joinHandler() http.Handler {
	return s.rep.member.Handler(s.admit, func() (bool, string) {
		if s.rep.serving.Load() {
			return true, ""
		}
		id, _ := s.rep.node.Leader()
		if r, ok := s.rep.fsm.Replica(id); ok && id != s.rep.cfg.ID {
			return false, r.APIURL
		}
		return false, ""
	})
}

// closeReplica stops following leadership and shuts raft down.
func (s *Server) closeReplica() {
	rs := s.rep
	if rs == nil {
		return
	}
	rs.serving.Store(false)
	select {
	case <-rs.stop:
	default:
		close(rs.stop)
	}
	if rs.node != nil {
		if err := rs.node.Shutdown(); err != nil {
			s.log.Warn("raft shutdown", "err", err)
		}
	}
	if rs.started {
		<-rs.done
	}
}
