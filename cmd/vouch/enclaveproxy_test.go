package main

import (
	"strings"
	"testing"
)

func TestEnclaveProxyFlags(t *testing.T) {
	cleanEnv(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"enclave", "proxy"}, "needs --to vsock://CID:PORT"},
		{[]string{"enclave", "proxy", "--to", "127.0.0.1:5005"}, "want vsock://PORT or vsock://CID:PORT"},
		{[]string{"enclave", "proxy", "--to", "vsock://5005"}, "name the enclave's CID"},
		{[]string{"enclave", "--listen", "vsock://3:5005"}, "any CID"},
	} {
		r := vouch(t, c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("want exit 2 saying %q:\n%s", c.want, r)
		}
	}
}
