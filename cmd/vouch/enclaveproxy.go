package main

import (
	"context"
	"flag"
	"net"
	"strings"

	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/internal/vsock"
)

// listenAPI listens for the runtime's API: on TCP HOST:PORT, or on vsock
// with vsock://PORT (inside a Nitro enclave, whose only network it is).
func listenAPI(addr string) (net.Listener, error) {
	if !strings.HasPrefix(addr, "vsock://") {
		return net.Listen("tcp", addr)
	}
	a, err := vsock.ParseURL(addr)
	if err != nil {
		return nil, cmdline.Usagef("--listen: %v", err)
	}
	if a.CID != vsock.AnyCID {
		return nil, cmdline.Usagef("--listen %s: an enclave listens on vsock://PORT, any CID", addr)
	}
	return vsock.Listen(a.Port)
}

// enclaveProxyFlags is vouch enclave proxy: on the parent instance, it
// forwards TCP connections to the runtime's vsock port in the enclave.
func enclaveProxyFlags(fs *flag.FlagSet) runFunc {
	listen := fs.String("listen", "127.0.0.1:7070", "the TCP `HOST:PORT` clients and nodes connect to")
	to := fs.String("to", "", "the enclave's vsock `ADDRESS`, vsock://CID:PORT (nitro-cli describe-enclaves shows its CID)")
	logFormat := fs.String("log-format", "text", "log `FORMAT`: text or json")
	logLevel := fs.String("log-level", "info", "log `LEVEL`: debug, info, warn or error")
	return func(ctx context.Context, u *cmdline.UI, args []string) error {
		if *to == "" {
			return cmdline.Usagef("enclave proxy needs --to vsock://CID:PORT")
		}
		dst, err := vsock.ParseURL(*to)
		if err != nil {
			return cmdline.Usagef("--to: %v", err)
		}
		if dst.CID == vsock.AnyCID {
			return cmdline.Usagef("--to %s: name the enclave's CID: vsock://CID:PORT", *to)
		}
		logger, err := newLogger(u, *logFormat, *logLevel)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			return err
		}
		logger.Info("forwarding to the enclave", "listen", ln.Addr().String(), "to", dst.String())
		return vsock.Forward(ctx, ln, func(ctx context.Context) (net.Conn, error) {
			return vsock.Dial(ctx, dst.CID, dst.Port)
		}, logger)
	}
}
