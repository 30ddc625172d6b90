package attest

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
)

// ExecutableDigest returns the SHA-256 (32 bytes, SimulatedPCRLen) of the
// running program's executable file. It is exactly what a simulated document
// carries as PCR0 when vouch passes it to NewSimulated, so anyone can
// reproduce the expected PCR0 with `sha256sum vouch` (or FileDigest).
func ExecutableDigest() ([]byte, error) {
	path, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("attest: locating executable: %w", err)
	}
	return FileDigest(path)
}

// FileDigest returns the SHA-256 (32 bytes) of the file at path: the PCR0 a
// simulated document of that executable carries.
func FileDigest(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("attest: hashing %s: %w", path, err)
	}
	return h.Sum(nil), nil
}
