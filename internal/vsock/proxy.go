package vsock

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
)

// Forward accepts connections on ln and copies each, both ways, to a
// connection from dial (the host side of an enclave: TCP in, vsock out),
// until ctx ends; then it closes ln and every connection and returns.
func Forward(ctx context.Context, ln net.Listener, dial func(context.Context) (net.Conn, error), log *slog.Logger) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer wg.Wait()
	for {
		in, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer in.Close()
			out, err := dial(ctx)
			if err != nil {
				log.Warn("proxy: dial failed", "from", in.RemoteAddr(), "err", err)
				return
			}
			defer out.Close()
			done := context.AfterFunc(ctx, func() { in.Close(); out.Close() })
			defer done()
			var cw sync.WaitGroup
			cw.Add(2)
			go func() { defer cw.Done(); io.Copy(out, in); closeWrite(out) }()
			go func() { defer cw.Done(); io.Copy(in, out); closeWrite(in) }()
			cw.Wait()
		}()
	}
}

// closeWrite half-closes c when it can, so the peer sees EOF.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}
