//go:build !(linux && (amd64 || arm64))

package attest

import "errors"

func openNSM(string) (nsmTransport, error) {
	return nil, errors.New("Nitro Secure Module is only available on 64-bit Linux inside a Nitro enclave")
}
