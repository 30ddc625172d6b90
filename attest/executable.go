package attest

import (
	"crypto/sha512"
	"fmt"
	"io"
	"os"
)

// ExecutableDigest returns the SHA-384 (48 bytes, PCRLen) of the running
// program's executable file. It is exactly what a simulated document carries
// as PCR0 when vouch passes it to NewSimulated, so a client that builds vouch
// itself can compute the expected PCR0 with FileDigest.
func ExecutableDigest() ([]byte, error) {
	path, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("attest: locating executable: %w", err)
	}
	return FileDigest(path)
}

// FileDigest returns the SHA-384 (48 bytes) of the file at path: the PCR0 a
// simulated document of that executable carries.
func FileDigest(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	defer f.Close()
	h := sha512.New384()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("attest: hashing %s: %w", path, err)
	}
	return h.Sum(nil), nil
}
