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

// loadSeq returns the seq of the last certificate accepted before a
// restart, or 0.
func (n *Node) loadSeq() (uint64, error) {
	if n.cfg.DataDir == "" {
		return 0, nil
	}
	if err := os.MkdirAll(n.cfg.DataDir, 0o700); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, seqFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		// A torn or foreign file: say so, and start from 0 rather than
		// refuse to start.
		n.log.Warn("ignoring unreadable state file", "file", filepath.Join(n.cfg.DataDir, seqFile), "err", err)
		return 0, nil
	}
	return v, nil
}

// saveSeq records the seq of an accepted certificate. It writes a
// temporary file and renames it, so the file is always whole.
func (n *Node) saveSeq(seq uint64) {
	if n.cfg.DataDir == "" {
		return
	}
	path := filepath.Join(n.cfg.DataDir, seqFile)
	tmp := path + ".tmp"
	err := os.WriteFile(tmp, []byte(strconv.FormatUint(seq, 10)+"\n"), 0o600)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		n.log.Warn("cannot record the accepted seq", "err", fmt.Errorf("%s: %w", path, err))
	}
}
