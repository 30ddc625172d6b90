package bench

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	wazeroapi "github.com/tetratelabs/wazero/api"

	"github.com/vouch-dev/vouch/client"
)

// The floor of one sealed call is the work that the design asks for and
// nothing else: an HTTP round trip on loopback with the real call's
// request and response sizes and headers, the input sealed and opened with
// AES-256-GCM (a session's cost), an empty call into a warm wasm instance,
// an Ed25519 signature by the server and its verification by the client.
// Run measures it in the same process, interleaved with the real runs
// (Config.Floor), so that both see the same load.

// emptyWasm is a module exporting run(i32) -> i32, which returns its
// argument: the cheapest call into a warm instance.
var emptyWasm = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
	0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, // type: (i32) -> i32
	0x03, 0x02, 0x01, 0x00, // one function of type 0
	0x07, 0x07, 0x01, 0x03, 'r', 'u', 'n', 0x00, 0x00, // export "run"
	0x0a, 0x06, 0x01, 0x04, 0x00, 0x20, 0x00, 0x0b, // body: local.get 0
}

// floorMessageBytes is the size of the message the floor signs: about a
// receipt's canonical bytes (docs/FORMATS.md, "Receipt").
const floorMessageBytes = 320

// Shape is what one real call puts on the wire: the floor copies it.
type Shape struct {
	// RequestBytes and ResponseBytes are the bodies' sizes.
	RequestBytes  int `json:"request_bytes"`
	ResponseBytes int `json:"response_bytes"`
	// RequestHeader and ResponseHeader are the headers the application
	// set (the HTTP library adds the same ones to both paths).
	RequestHeader  http.Header `json:"-"`
	ResponseHeader http.Header `json:"-"`
}

// shapeRecorder is an http.RoundTripper that records the shape of the last
// call whose request had a body.
type shapeRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	last Shape
}

func (s *shapeRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(r)
	if err != nil || r.ContentLength <= 0 {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	s.last = Shape{RequestBytes: int(r.ContentLength), ResponseBytes: len(body), RequestHeader: r.Header.Clone(), ResponseHeader: resp.Header.Clone()}
	s.mu.Unlock()
	return resp, nil
}

// recordShape makes one run through a client of its own, whose transport
// records the request and response, and returns their shape.
func recordShape(ctx context.Context, t *Target, input []byte) (Shape, error) {
	rec := &shapeRecorder{base: client.NewHTTPClient().Transport}
	opts := t.opts
	opts.HTTPClient = &http.Client{Transport: rec}
	c, err := client.New(t.url, opts)
	if err != nil {
		return Shape{}, err
	}
	defer c.Close()
	if _, err := c.Run(ctx, t.Refs[0], input); err != nil {
		return Shape{}, fmt.Errorf("bench: recording a run's shape: %w", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.last.RequestBytes == 0 {
		return Shape{}, errors.New("bench: recording a run's shape: no request with a body")
	}
	return rec.last, nil
}

// Floor serves and calls the floor of one sealed call.
type Floor struct {
	shape  Shape
	url    string
	hc     *http.Client
	srv    *http.Server
	done   chan error
	aead   cipher.AEAD
	priv   ed25519.PrivateKey
	pub    ed25519.PublicKey
	nonce  atomic.Uint64
	rt     wazero.Runtime
	module wazero.CompiledModule
	idle   chan wazeroapi.Function
	input  []byte
}

// StartFloor starts the floor's server on 127.0.0.1 and its client, for
// calls of the given shape carrying input.
func StartFloor(ctx context.Context, shape Shape, input []byte) (_ *Floor, err error) {
	f := &Floor{shape: shape, input: input, done: make(chan error, 1), idle: make(chan wazeroapi.Function, 64)}
	var key [32]byte
	rand.Read(key[:])
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	if f.aead, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	if f.pub, f.priv, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return nil, err
	}
	f.rt = wazero.NewRuntime(ctx)
	defer func() {
		if err != nil {
			f.rt.Close(context.Background())
		}
	}()
	if f.module, err = f.rt.CompileModule(ctx, emptyWasm); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f.url = "http://" + ln.Addr().String() + "/floor"
	// The runtime's http.Server settings (enclave.Server.Serve).
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	go func() { f.done <- f.srv.Serve(ln) }()
	f.hc = client.NewHTTPClient()
	return f, nil
}

// Close stops the server and releases the wasm runtime.
func (f *Floor) Close() error {
	f.hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := f.srv.Shutdown(ctx)
	<-f.done
	f.rt.Close(context.Background())
	return err
}

// wasmCall calls the empty function on a warm instance.
func (f *Floor) wasmCall(ctx context.Context, n int) error {
	var fn wazeroapi.Function
	select {
	case fn = <-f.idle:
	default:
		m, err := f.rt.InstantiateModule(ctx, f.module, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			return err
		}
		fn = m.ExportedFunction("run")
	}
	res, err := fn.Call(ctx, uint64(n))
	if err != nil {
		return err
	}
	if int(res[0]) != n {
		return fmt.Errorf("empty wasm call returned %d, want %d", res[0], n)
	}
	select {
	case f.idle <- fn:
	default:
	}
	return nil
}

// serve is the server's side: open the input, call the empty function,
// sign, answer with a body of the real response's size.
func (f *Floor) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ns := f.aead.NonceSize()
	if len(body) < ns+4 {
		http.Error(w, "short body", http.StatusBadRequest)
		return
	}
	n := int(binary.BigEndian.Uint32(body[ns:]))
	if n > len(body)-ns-4 {
		http.Error(w, "bad length", http.StatusBadRequest)
		return
	}
	in, err := f.aead.Open(nil, body[:ns], body[ns+4:ns+4+n], nil)
	if err != nil {
		http.Error(w, "open: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := f.wasmCall(r.Context(), len(in)); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	msg := make([]byte, floorMessageBytes)
	sum := sha256.Sum256(in)
	copy(msg, sum[:])
	sig := ed25519.Sign(f.priv, msg)
	out := make([]byte, max(f.shape.ResponseBytes, len(msg)+len(sig)))
	copy(out, msg)
	copy(out[len(msg):], sig)
	for k, v := range f.shape.ResponseHeader {
		w.Header()[k] = v
	}
	w.Write(out)
}

// Call makes one floor call: seal, round trip, verify.
func (f *Floor) Call(ctx context.Context) error {
	ns := f.aead.NonceSize()
	body := make([]byte, ns+4, max(f.shape.RequestBytes, ns+4+len(f.input)+f.aead.Overhead()))
	binary.BigEndian.PutUint64(body[ns-8:ns], f.nonce.Add(1))
	body = f.aead.Seal(body, body[:ns], f.input, nil)
	binary.BigEndian.PutUint32(body[ns:], uint32(len(body)-ns-4))
	body = body[:max(len(body), f.shape.RequestBytes)]
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range f.shape.RequestHeader {
		req.Header[k] = v
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return err
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("floor server: %s: %s", resp.Status, out)
	}
	if len(out) < floorMessageBytes+ed25519.SignatureSize {
		return fmt.Errorf("floor server: answer of %d bytes", len(out))
	}
	msg, sig := out[:floorMessageBytes], out[floorMessageBytes:floorMessageBytes+ed25519.SignatureSize]
	if !ed25519.Verify(f.pub, msg, sig) {
		return errors.New("floor server: bad signature")
	}
	return nil
}
