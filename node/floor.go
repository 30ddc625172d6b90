package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vouch-dev/vouch/election"
)

// floorCertFile holds the certificate of the floor, next to last_seq: the
// proof a node presents when the runtime answers below it (its state was
// rolled back). Its contents are the certificate's wire form
// (election.Certificate.Encode, docs/FORMATS.md).
const floorCertFile = "floor_cert"

// FloorPresenter is a Runtime that takes proofs of rollback: a certificate
// the runtime signed that its state no longer knows. It reports whether
// the runtime moved past it. ClientRuntime implements it.
type FloorPresenter interface {
	PresentFloor(ctx context.Context, cert *election.Certificate) (moved bool, err error)
}

// PresentFloor implements FloorPresenter.
func (r *ClientRuntime) PresentFloor(ctx context.Context, cert *election.Certificate) (bool, error) {
	res, err := r.c.PresentFloor(ctx, r.ref.Load().ID, cert.Receipt, cert.Output)
	if err != nil {
		return false, err
	}
	return res.RolledBack, nil
}

// loadFloorCert returns the floor certificate persisted before a restart,
// or nil when there is none. A file that exists but does not decode stops
// the node, as a damaged last_seq does.
func (n *Node) loadFloorCert() (*election.Certificate, error) {
	if n.cfg.DataDir == "" {
		return nil, nil
	}
	path := filepath.Join(n.cfg.DataDir, floorCertFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrStateFile, path, err)
	}
	c, err := election.DecodeCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("%w %s: want one certificate (%d bytes found, torn write?): %w", ErrStateFile, path, len(b), err)
	}
	return c, nil
}

// saveFloorCert records the certificate of the floor before the node acts
// on it, with the same discipline as last_seq.
func (n *Node) saveFloorCert(c *election.Certificate) {
	if n.cfg.DataDir == "" || c == nil {
		return
	}
	if err := writeFileSync(filepath.Join(n.cfg.DataDir, floorCertFile), c.Encode()); err != nil {
		n.log.Warn("cannot record the floor certificate", "err", err)
	}
}

// present sends the floor certificate to the runtime and posts its answer
// to the loop.
func (n *Node) present(c *election.Certificate) {
	in := input{kind: inPresented}
	if fp, ok := n.cfg.Runtime.(FloorPresenter); ok {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.CallTimeout)
		in.moved, in.err = fp.PresentFloor(ctx, c)
		cancel()
	} else {
		in.err = errors.New("this runtime client cannot present proofs of rollback")
	}
	select {
	case n.inbox <- in:
	case <-n.stop:
	}
}
