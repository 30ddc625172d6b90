package vsock

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	for in, want := range map[string]Addr{"vsock://5005": {AnyCID, 5005}, "vsock://16:5005": {16, 5005}, "vsock://1:80": {1, 80}} {
		if got, err := ParseURL(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"5005", "tcp://1:2", "vsock://", "vsock://x:1", "vsock://1:x", "vsock://1:99999999999"} {
		if _, err := ParseURL(in); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	f.Add("vsock://3:5005")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseURL(s)
		if err == nil && a.CID != AnyCID {
			if b, err := ParseURL(a.String()); err != nil || b != a {
				t.Fatalf("%q -> %v -> %v %v", s, a, b, err)
			}
		}
	})
}

// echo serves ln, writing back what it reads.
func echo(t *testing.T, ln net.Listener) {
	t.Helper()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
}

// roundTrip forwards a TCP listener to dial and checks an echo through it.
func roundTrip(t *testing.T, dial func(context.Context) (net.Conn, error)) {
	t.Helper()
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Forward(ctx, front, dial, slog.New(slog.DiscardHandler)) }()
	c, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	msg := []byte("GET /healthz HTTP/1.1\r\n\r\n")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != string(msg) {
		t.Fatalf("echo through the proxy: %q %v", got, err)
	}
	c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The proxy's code path with a TCP stand-in for the vsock side.
func TestForwardTCPStandIn(t *testing.T) {
	back, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	echo(t, back)
	roundTrip(t, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", back.Addr().String())
	})
}
