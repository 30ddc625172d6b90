package enclave

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path/filepath"

	"github.com/vouch-dev/vouch/enclave/internal/servicekeys"
	"github.com/vouch-dev/vouch/internal/secretfile"
	"github.com/vouch-dev/vouch/seal"
	"github.com/vouch-dev/vouch/token"
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

// readSecret reads a secret file (mode 0600, owned by us).
func readSecret(path string) ([]byte, error) { return secretfile.Read(path, maxKeyFile) }

// createSecret writes a new secret file; fs.ErrExist if path exists.
func createSecret(path string, data []byte) error { return secretfile.Create(path, data) }

// readOwnerToken reads an owner credential file.
func readOwnerToken(path string) (string, error) { return token.LoadOwnerTokenFile(path) }

// ed25519PEM encodes an Ed25519 key as loadEd25519 reads it.
func ed25519PEM(k ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// x25519PEM encodes the HPKE key as loadKeys reads it.
func x25519PEM(k *servicekeys.Keys) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X25519 PRIVATE KEY", Bytes: k.HPKE.Bytes()})
}
