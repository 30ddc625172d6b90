package node

import (
	"crypto/ed25519"
	"os"
	"path/filepath"

	"github.com/vouch-dev/vouch/internal/secretfile"
)

// IdentityFile is where a node keeps its Ed25519 identity key under its
// data directory.
const IdentityFile = "node_ed25519.pem"

// LoadIdentity returns the node's identity key from dataDir, creating it
// with crypto/rand (mode 0600) at first start; created tells which.
func LoadIdentity(dataDir string) (key ed25519.PrivateKey, created bool, err error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, false, err
	}
	return LoadOrCreateKey(filepath.Join(dataDir, IdentityFile))
}

// LoadOrCreateKey returns the Ed25519 key in the PKCS#8 PEM file at path,
// creating it with crypto/rand (mode 0600) if it does not exist. The
// cluster owner's key uses the same form.
func LoadOrCreateKey(path string) (key ed25519.PrivateKey, created bool, err error) {
	return secretfile.LoadOrCreateEd25519(path)
}
