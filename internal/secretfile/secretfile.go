// Package secretfile reads and writes files that hold secrets: private keys
// and credentials under a runtime's data directory.
//
// A secret file is a regular file that neither group nor others may access
// (mode 0600 or stricter). Create writes it whole or not at all and never
// replaces an existing file, so two processes that start at once agree on
// one secret.
package secretfile

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// ErrInsecure is wrapped when a secret file's mode lets others read it.
var ErrInsecure = errors.New("secret file is readable by others")

// Read returns the contents of the secret file at path, refusing anything
// that is not a regular, private file of at most maxLen bytes. A missing
// file gives an error wrapping fs.ErrNotExist.
func Read(path string, maxLen int64) ([]byte, error) {
	// Stat before opening, so that a FIFO or device is refused instead of
	// blocking the open.
	before, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !before.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%v)", path, before.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !os.SameFile(before, fi) {
		return nil, fmt.Errorf("%s changed while it was being opened", path)
	}
	if err := CheckPrivate(path, fi); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxLen+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > maxLen {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxLen)
	}
	return data, nil
}

// CheckPrivate refuses a file that group or others may access. Windows has
// no such mode bits, so there the check is left to the file's ACL.
func CheckPrivate(path string, fi fs.FileInfo) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o, so group or others can access it; run: chmod 600 %s",
			ErrInsecure, path, perm, path)
	}
	return nil
}

// Create writes data to a new secret file at path. It writes a temporary
// file (mode 0600, O_EXCL) in the same directory, flushes it to disk and
// hard-links it into place, so path appears complete or not at all. If path
// already exists the error wraps fs.ErrExist and the file is left alone.
func Create(path string, data []byte) error {
	tmpName, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmpName) // after the link, this removes only the temporary name
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists: %w", path, fs.ErrExist)
		}
		// No hard links on this file system: fall back to an exclusive
		// create.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s already exists: %w", path, fs.ErrExist)
			}
			return err
		}
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return err
		}
	}
	return syncDir(filepath.Dir(path))
}

// Replace writes data to the secret file at path (mode 0600), replacing
// any file there atomically: readers see the old file or the new one, never
// a part.
func Replace(path string, data []byte) error {
	tmpName, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmpName) // after the rename, this removes nothing
	if err := os.Rename(tmpName, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data, flushed to disk, to a new temporary file of mode
// 0600 next to path and returns its name.
func writeTemp(path string, data []byte) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	tmpName := tmp.Name()
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		os.Remove(tmpName)
		return "", err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmpName)
		return "", err
	}
	return tmpName, nil
}

// LoadOrCreate returns the secret at path, creating it with gen if the file
// does not exist; created tells which happened. If another process creates
// the file first, its secret is returned.
func LoadOrCreate(path string, maxLen int64, gen func() ([]byte, error)) (data []byte, created bool, err error) {
	data, err = Read(path, maxLen)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return data, false, err
	}
	data, err = gen()
	if err != nil {
		return nil, false, err
	}
	err = Create(path, data)
	if errors.Is(err, fs.ErrExist) {
		data, err = Read(path, maxLen)
		return data, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return data, true, nil
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for syncing
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// LoadOrCreateEd25519 returns the Ed25519 private key stored as PKCS#8 PEM
// in the secret file at path, creating it with crypto/rand if it does not
// exist; created tells which.
func LoadOrCreateEd25519(path string) (key ed25519.PrivateKey, created bool, err error) {
	raw, created, err := LoadOrCreate(path, 4<<10, func() ([]byte, error) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("key %s: %w", path, err)
	}
	key, err = ParseEd25519PEM(raw)
	if err != nil {
		return nil, false, fmt.Errorf("key %s: %w", path, err)
	}
	return key, created, nil
}

// ParseEd25519PEM decodes an Ed25519 private key in PKCS#8 PEM.
func ParseEd25519PEM(raw []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(raw)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("not a PRIVATE KEY PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("not an Ed25519 key")
	}
	return priv, nil
}
