// Package datadir copies a data directory for tests that roll a runtime or
// a node back to an older copy, or start two runtimes from one.
package datadir

import (
	"io/fs"
	"os"
	"path/filepath"
)

// Copy copies the tree src into dst, keeping each file's permissions (key
// files must stay 0600). Directories are created at least 0700 so that the
// copy can be filled; anything but regular files and directories is
// skipped.
func Copy(dst, src string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(to, info.Mode().Perm()|0o700)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, info.Mode().Perm())
	})
}
