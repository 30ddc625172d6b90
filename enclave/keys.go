package enclave

import (
	"crypto/ed25519"
	"encoding/pem"
	"fmt"
	"path/filepath"

	"github.com/vouch-dev/vouch/internal/secretfile"
	"github.com/vouch-dev/vouch/seal"
)

// Key files under the data directory.
const (
	receiptKeyFile = "receipt_ed25519.pem"
	tokenKeyFile   = "token_ed25519.pem"
	hpkeKeyFile    = "hpke_x25519.pem"
	ownerTokenFile = "owner.token"
	storeFile      = "vouch.db"
	cacheDir       = "compilation-cache"
)

const maxKeyFile = 4 << 10

// keys are the runtime's private keys.
type keys struct {
	receipt ed25519.PrivateKey
	token   ed25519.PrivateKey
	hpke    *seal.PrivateKey
}

func loadKeys(dir string) (*keys, error) {
	var k keys
	var err error
	if k.receipt, err = loadEd25519(filepath.Join(dir, receiptKeyFile)); err != nil {
		return nil, err
	}
	if k.token, err = loadEd25519(filepath.Join(dir, tokenKeyFile)); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, hpkeKeyFile)
	raw, _, err := secretfile.LoadOrCreate(path, maxKeyFile, func() ([]byte, error) {
		key, err := seal.GenerateKey()
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "X25519 PRIVATE KEY", Bytes: key.Bytes()}), nil
	})
	if err != nil {
		return nil, fmt.Errorf("HPKE key %s: %w", path, err)
	}
	blk, _ := pem.Decode(raw)
	if blk == nil || blk.Type != "X25519 PRIVATE KEY" {
		return nil, fmt.Errorf("HPKE key %s: not an X25519 PRIVATE KEY PEM block", path)
	}
	if k.hpke, err = seal.NewPrivateKey(blk.Bytes); err != nil {
		return nil, fmt.Errorf("HPKE key %s: %w", path, err)
	}
	return &k, nil
}

// loadEd25519 loads, or creates with crypto/rand, an Ed25519 key stored as
// PKCS#8 PEM with mode 0600.
func loadEd25519(path string) (ed25519.PrivateKey, error) {
	key, _, err := secretfile.LoadOrCreateEd25519(path)
	return key, err
}
