package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const seqFile = "last_seq"

// ErrStateFile is wrapped by the error Start returns when the node's state
// file (DATA/last_seq) exists but cannot be read as a seq.
var ErrStateFile = errors.New("unreadable state file")

// loadSeq returns the seq (signed views: the term) of the last certificate
// accepted before a restart, or 0 when there is none. A file that exists
// but does not hold a seq is an error, not a silent 0: starting from 0
// would let an old certificate be replayed to this node.
func (n *Node) loadSeq() (uint64, error) {
	if n.cfg.DataDir == "" {
		return 0, nil
	}
	if err := os.MkdirAll(n.cfg.DataDir, 0o700); err != nil {
		return 0, err
	}
	path := filepath.Join(n.cfg.DataDir, seqFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w %s: %w", ErrStateFile, path, err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || !strings.HasSuffix(string(b), "\n") {
		if err == nil {
			err = errors.New("no final newline (torn write?)")
		}
		return 0, fmt.Errorf("%w %s: want one decimal seq and a newline, found %d bytes: %w", ErrStateFile, path, len(b), err)
	}
	return v, nil
}

// saveSeq records the seq of an accepted certificate before the node acts
// on it: it writes a temporary file, syncs it, renames it over the old one
// and syncs the directory, so that after a crash the file holds either the
// old seq or the new one, whole.
func (n *Node) saveSeq(seq uint64) {
	if n.cfg.DataDir == "" {
		return
	}
	path := filepath.Join(n.cfg.DataDir, seqFile)
	if err := writeFileSync(path, []byte(strconv.FormatUint(seq, 10)+"\n")); err != nil {
		n.log.Warn("cannot record the accepted seq", "err", err)
	}
}

func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%s: %w", path, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Dir(path), err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("%s: syncing the directory: %w", filepath.Dir(path), err)
	}
	return nil
}
