package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/node"
	"github.com/vouch-dev/vouch/token"
)

// newTokenHint is what to do about a function token that has expired or
// is about to.
const newTokenHint = "mint a new reference with `vouch token <ID> --function-checksum <SUM> --expiry DURATION -o json --out FILE`, then send the node SIGHUP (it re-reads the file) or restart it with --ref FILE"

// checkTokenFresh refuses a function token that has already expired. It
// reads the exp claim without verifying the token: only the runtime
// decides whether a token is valid, but one past its exp never is.
func checkTokenFresh(tok string, now time.Time) error {
	c, err := token.Parse(tok)
	if err != nil {
		return nil // the runtime says what is wrong with it
	}
	if !now.Before(c.ExpiresAt) {
		return cmdline.WithHint(fmt.Errorf("the function token expired at %s (%s ago): the runtime would refuse every call",
			c.ExpiresAt.UTC().Format(time.RFC3339), now.Sub(c.ExpiresAt).Round(time.Second)), newTokenHint)
	}
	return nil
}

// (c *clientFlags) refPath is the reference file the node reads: --ref,
// $VOUCH_REF, else ./leader_election.json when it exists.
func (c *clientFlags) refPath() string {
	switch {
	case c.ref != "":
		return c.ref
	case os.Getenv("VOUCH_REF") != "":
		return os.Getenv("VOUCH_REF")
	}
	if _, err := os.Stat(defaultRefFile); err == nil {
		return defaultRefFile
	}
	return ""
}

// reloader swaps a running node's function token for the one in its
// reference file, without leaving the cluster (SIGHUP).
type reloader struct {
	path string
	ref  *api.Ref // the reference in use
	rt   *node.ClientRuntime
	log  *slog.Logger
	exp  prometheus.Gauge // vouch_node_token_expiry_timestamp_seconds
	now  func() time.Time

	mu         sync.Mutex
	ctx        context.Context
	stopExpiry context.CancelFunc // the current token's expiry warnings
}

func newReloader(ctx context.Context, path string, ref *api.Ref, tok string, rt *node.ClientRuntime, log *slog.Logger, reg prometheus.Registerer) *reloader {
	if ref == nil {
		path = "" // flags only: nothing to re-read
	}
	r := &reloader{path: path, ref: ref, rt: rt, log: log, now: time.Now, ctx: ctx,
		exp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vouch_node_token_expiry_timestamp_seconds",
			Help: "When the node's function token expires (its exp claim, Unix seconds); 0 when it has none that parses."})}
	if reg != nil {
		reg.MustRegister(r.exp)
	}
	r.track(tok)
	return r
}

// track sets the expiry gauge and restarts the expiry warnings for tok.
func (r *reloader) track(tok string) {
	if c, err := token.Parse(tok); err == nil {
		r.exp.Set(float64(c.ExpiresAt.Unix()))
	} else {
		r.exp.Set(0)
	}
	if r.stopExpiry != nil {
		r.stopExpiry()
	}
	ctx, cancel := context.WithCancel(r.ctx)
	r.stopExpiry = cancel
	go warnTokenExpiry(ctx, r.log, tok, r.now)
}

// errReloadRefused marks a reference that may not replace the running one.
var errReloadRefused = errors.New("reload refused")

// reload re-reads the reference file and swaps the function token. It
// refuses, keeping the old reference, a file that names another function
// or another cluster identity (gossip keys, trust policy, runtime URLs),
// and a token that has already expired.
func (r *reloader) reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.path == "" {
		return fmt.Errorf("%w: the node was started without a reference file (--ref, $VOUCH_REF or ./%s)", errReloadRefused, defaultRefFile)
	}
	nr, err := api.LoadRef(r.path)
	if err != nil {
		return fmt.Errorf("%w: %v", errReloadRefused, err)
	}
	if field := refIdentityChange(r.ref, nr); field != "" {
		return fmt.Errorf("%w: %s changes %s; restart the node to change it", errReloadRefused, r.path, field)
	}
	if err := checkTokenFresh(nr.FunctionToken, r.now()); err != nil {
		return fmt.Errorf("%w: %s: %v", errReloadRefused, r.path, err)
	}
	fr := client.FunctionRef{ID: nr.FunctionID, Checksum: nr.FunctionChecksum, Token: nr.FunctionToken}
	if err := r.rt.Reload(fr); err != nil {
		return fmt.Errorf("%w: %v", errReloadRefused, err)
	}
	r.ref = nr
	r.track(nr.FunctionToken)
	return nil
}

// refIdentityChange names what in b differs from a that a reload may not
// change, or returns "".
func refIdentityChange(a, b *api.Ref) string {
	switch {
	case a.FunctionID != b.FunctionID:
		return fmt.Sprintf("the function ID (%s to %s)", a.FunctionID, b.FunctionID)
	case a.FunctionChecksum != b.FunctionChecksum:
		return fmt.Sprintf("the function checksum (%s to %s)", a.FunctionChecksum, b.FunctionChecksum)
	case a.GossipKey != b.GossipKey || !slices.Equal(a.GossipExtraKeys, b.GossipExtraKeys):
		return "the cluster's gossip keys (mint the new reference with `vouch token ... -o json --cluster-ref OLD_REF` to keep them)"
	case a.EnclaveURL != b.EnclaveURL || !slices.Equal(a.EnclaveURLs, b.EnclaveURLs):
		return "the runtime's URLs"
	case !trustEqual(a.Trust, b.Trust):
		return "the trust policy"
	}
	return ""
}

func trustEqual(a, b api.Trust) bool {
	if a.Platform != b.Platform || a.AllowSimulated != b.AllowSimulated || a.RootFingerprint != b.RootFingerprint || a.KeyID != b.KeyID || len(a.PCRs) != len(b.PCRs) {
		return false
	}
	for k, v := range a.PCRs {
		if !slices.Equal(v, b.PCRs[k]) {
			return false
		}
	}
	return true
}

// reloadOnSignal reloads on SIGHUP until ctx ends; a refused reload is
// logged and the node keeps its reference.
func reloadOnSignal(ctx context.Context, r *reloader) {
	onSignal(ctx, notifyReload, func() {
		if err := r.reload(); err != nil {
			r.log.Error("SIGHUP: kept the current reference", "err", err)
			return
		}
		r.log.Info("SIGHUP: reloaded the function token", "ref", r.path)
	})
}
