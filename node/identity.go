package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"vouch/internal/secretfile"
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
	raw, created, err := secretfile.LoadOrCreate(path, 4<<10, func() ([]byte, error) {
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
	key, err = ParsePrivateKeyPEM(raw)
	if err != nil {
		return nil, false, fmt.Errorf("key %s: %w", path, err)
	}
	return key, created, nil
}

// ParsePrivateKeyPEM decodes an Ed25519 private key in PKCS#8 PEM.
func ParsePrivateKeyPEM(raw []byte) (ed25519.PrivateKey, error) {
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
