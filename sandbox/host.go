package sandbox

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Namespace selects where a state key lives.
type Namespace uint32

// State namespaces.
const (
	// Durable state is kept in the runtime's store and survives restarts.
	Durable Namespace = 0
	// Volatile state is kept in memory and is lost when the runtime
	// restarts. It is for data that goes stale quickly anyway.
	Volatile Namespace = 1
)

// Limits of the state host functions, and of the messages ed25519_verify
// and sha256 take.
const (
	MaxStateKey      = 256
	MaxStateValue    = 1 << 20
	MaxVerifyMessage = 1 << 20
	MaxHashMessage   = 1 << 20
)

// Host gives an invocation its function's state. The runtime passes one per
// invocation of a stateful function and commits its writes only if the
// invocation succeeds. It may be nil for functions that use no state.
type Host interface {
	Get(ns Namespace, key []byte) (value []byte, ok bool, err error)
	Put(ns Namespace, key, value []byte) error
	Delete(ns Namespace, key []byte) error
	// CounterNext increments the named counter and returns its new value.
	CounterNext(name []byte) (int64, error)
}

// maxErrorMessage bounds what error_write keeps.
const maxErrorMessage = 4 << 10

type invocationKey struct{}

// invocation is the state of one call, reachable from host functions
// through the context.
type invocation struct {
	input     []byte
	output    []byte
	maxOutput int64
	errMsg    string
	fail      *Error // a failure a host function recorded
	log       limitedBuffer
	host      Host
	parent    context.Context // the caller's context, before the timeout
	timeout   time.Duration   // the timeout ctx got
	// cancel ends the invocation's context, interrupting the guest; nil
	// while an instance starts up.
	cancel  context.CancelFunc
	stopped bool // stop was called: the output overflowed
}

// stop interrupts a guest whose output is over the limit: going on could
// only waste its time slot.
func (inv *invocation) stop() {
	inv.stopped = true
	if inv.cancel != nil {
		inv.cancel()
	}
}

func invocationFrom(ctx context.Context) *invocation {
	inv, _ := ctx.Value(invocationKey{}).(*invocation)
	return inv
}

// hostFunctionNames are the functions of the vouch import module; the
// value says whether importing it makes a function stateful.
var hostFunctionNames = map[string]bool{
	"input_read":     false,
	"output_write":   false,
	"error_write":    false,
	"state_get":      true,
	"state_put":      true,
	"state_delete":   true,
	"counter_next":   true,
	"random_fill":    false,
	"time_now":       false,
	"time_monotonic": false,
	"ed25519_verify": false,
	"sha256":         false,
}

// monotonicOrigin is the origin of time_monotonic: when this process
// loaded the package, i.e. when it started. It is per process, not per
// function load, so its readings never go back while a function's
// volatile state lives. time.Since on it reads Go's monotonic clock,
// which wall-clock steps do not move.
var monotonicOrigin = time.Now()

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// hostFail records a host-side failure and stops the guest with a trap.
func hostFail(inv *invocation, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if inv != nil && inv.fail == nil {
		inv.fail = &Error{Kind: KindHost, Message: msg}
	}
	panic(fmt.Errorf("%s", msg))
}

// read copies a guest memory range, trapping when it is out of bounds.
func read(inv *invocation, m api.Module, fn string, ptr, n uint32) []byte {
	p, ok := m.Memory().Read(ptr, n)
	if !ok {
		hostFail(inv, "%s: range [%d, %d) is outside memory", fn, ptr, uint64(ptr)+uint64(n))
	}
	return append([]byte(nil), p...)
}

func stateHost(inv *invocation, fn string) Host {
	if inv == nil || inv.host == nil {
		hostFail(inv, "%s: this invocation has no state (the runtime runs stateful functions with a state host)", fn)
	}
	return inv.host
}

func namespace(inv *invocation, fn string, ns uint32) Namespace {
	if Namespace(ns) != Durable && Namespace(ns) != Volatile {
		hostFail(inv, "%s: unknown namespace %d (0 durable, 1 volatile)", fn, ns)
	}
	return Namespace(ns)
}

func stateKey(inv *invocation, m api.Module, fn string, ptr, n uint32) []byte {
	if n == 0 || n > MaxStateKey {
		hostFail(inv, "%s: key of %d bytes; keys are 1 to %d bytes", fn, n, MaxStateKey)
	}
	return read(inv, m, fn, ptr, n)
}

func instantiateHost(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(HostModule)
	// input_read(ptr, len) -> copied: copies up to len input bytes to ptr.
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
		inv := invocationFrom(ctx)
		ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
		if inv == nil {
			stack[0] = 0
			return
		}
		in := inv.input
		if uint64(n) < uint64(len(in)) {
			in = in[:n]
		}
		if !m.Memory().Write(ptr, in) {
			panic(fmt.Errorf("input_read: range [%d, %d) is outside memory", ptr, uint64(ptr)+uint64(len(in))))
		}
		stack[0] = uint64(len(in))
	}), []api.ValueType{i32, i32}, []api.ValueType{i32}).Export("input_read")

	// output_write(ptr, len) -> 0 ok, 1 refused (over the output limit).
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
		inv := invocationFrom(ctx)
		ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
		if inv == nil {
			stack[0] = 1
			return
		}
		if int64(len(inv.output))+int64(n) > inv.maxOutput {
			inv.fail = &Error{Kind: KindOutputTooLarge, Message: fmt.Sprintf("output is more than the function's limit of %d bytes", inv.maxOutput)}
			inv.stop()
			stack[0] = 1
			return
		}
		p, ok := m.Memory().Read(ptr, n)
		if !ok {
			panic(fmt.Errorf("output_write: range [%d, %d) is outside memory", ptr, uint64(ptr)+uint64(n)))
		}
		inv.output = append(inv.output, p...)
		stack[0] = 0
	}), []api.ValueType{i32, i32}, []api.ValueType{i32}).Export("output_write")

	// error_write(ptr, len) -> 0: records the handler's error message.
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
		inv := invocationFrom(ctx)
		ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
		stack[0] = 0
		if inv == nil {
			return
		}
		if n > maxErrorMessage {
			n = maxErrorMessage
		}
		p, ok := m.Memory().Read(ptr, n)
		if !ok {
			panic(fmt.Errorf("error_write: range [%d, %d) is outside memory", ptr, uint64(ptr)+uint64(n)))
		}
		inv.errMsg = string(p)
	}), []api.ValueType{i32, i32}, []api.ValueType{i32}).Export("error_write")
	// state_get(ns, key, key_len, buf, buf_cap) -> len | -1 (missing).
	// When len > buf_cap nothing is copied: call again with a larger buffer.
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
		inv := invocationFrom(ctx)
		ns := namespace(inv, "state_get", api.DecodeU32(stack[0]))
		key := stateKey(inv, m, "state_get", api.DecodeU32(stack[1]), api.DecodeU32(stack[2]))
		buf, bufCap := api.DecodeU32(stack[3]), api.DecodeU32(stack[4])
		v, ok, err := stateHost(inv, "state_get").Get(ns, key)
		if err != nil {
			hostFail(inv, "state_get: %v", err)
		}
		if !ok {
			stack[0] = api.EncodeI32(-1)
			return
		}
		if uint64(len(v)) <= uint64(bufCap) && !m.Memory().Write(buf, v) {
			hostFail(inv, "state_get: buffer [%d, %d) is outside memory", buf, uint64(buf)+uint64(len(v)))
		}
		stack[0] = api.EncodeI32(int32(len(v)))
	}), []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32}).Export("state_get")

	// state_put(ns, key, key_len, value, value_len) -> 0.
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
		inv := invocationFrom(ctx)
		ns := namespace(inv, "state_put", api.DecodeU32(stack[0]))
		key := stateKey(inv, m, "state_put", api.DecodeU32(stack[1]), api.DecodeU32(stack[2]))
		n := api.DecodeU32(stack[4])
		if n > MaxStateValue {
			hostFail(inv, "state_put: value of %d bytes; values are at most %d bytes", n, MaxStateValue)
		}
		v := read(inv, m, "state_put", api.DecodeU32(stack[3]), n)
		if err := stateHost(inv, "state_put").Put(ns, key, v); err != nil {
			hostFail(inv, "state_put: %v", err)
		}
		stack[0] = 0
	}), []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32}).Export("state_put")

	// state_delete(ns, key, key_len) -> 0.
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
		inv := invocationFrom(ctx)
		ns := namespace(inv, "state_delete", api.DecodeU32(stack[0]))
		key := stateKey(inv, m, "state_delete", api.DecodeU32(stack[1]), api.DecodeU32(stack[2]))
		if err := stateHost(inv, "state_delete").Delete(ns, key); err != nil {
			hostFail(inv, "state_delete: %v", err)
		}
		stack[0] = 0
	}), []api.ValueType{i32, i32, i32}, []api.ValueType{i32}).Export("state_delete")

	// counter_next(name, name_len) -> the counter's new value (from 1).
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
		inv := invocationFrom(ctx)
		name := stateKey(inv, m, "counter_next", api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
		v, err := stateHost(inv, "counter_next").CounterNext(name)
		if err != nil {
			hostFail(inv, "counter_next: %v", err)
		}
		stack[0] = api.EncodeI64(v)
	}), []api.ValueType{i32, i32}, []api.ValueType{i64}).Export("counter_next")

	// random_fill(buf, len) -> 0: bytes from the runtime's CSPRNG.
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
		inv := invocationFrom(ctx)
		ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
		if n > 1<<20 {
			hostFail(inv, "random_fill: %d bytes at once; at most %d", n, 1<<20)
		}
		p := make([]byte, n)
		rand.Read(p)
		if !m.Memory().Write(ptr, p) {
			hostFail(inv, "random_fill: range [%d, %d) is outside memory", ptr, uint64(ptr)+uint64(n))
		}
		stack[0] = 0
	}), []api.ValueType{i32, i32}, []api.ValueType{i32}).Export("random_fill")

	// time_now() -> Unix nanoseconds of the runtime's clock.
	b.NewFunctionBuilder().WithGoFunction(api.GoFunc(func(ctx context.Context, stack []uint64) {
		stack[0] = api.EncodeI64(time.Now().UnixNano())
	}), nil, []api.ValueType{i64}).Export("time_now")

	// time_monotonic() -> nanoseconds since the runtime process started
	// (monotonicOrigin): it only grows, and clock steps do not move it,
	// but it starts again from about 0 with the process.
	b.NewFunctionBuilder().WithGoFunction(api.GoFunc(func(ctx context.Context, stack []uint64) {
		stack[0] = api.EncodeI64(int64(time.Since(monotonicOrigin)))
	}), nil, []api.ValueType{i64}).Export("time_monotonic")

	// ed25519_verify(pub, msg, msg_len, sig) -> 1 if sig (64 bytes at sig)
	// is a valid Ed25519 signature of msg by pub (32 bytes at pub), else 0.
	// Verification compiled to wasm costs a guest about 0.7 ms; here it
	// costs about 0.05 ms.
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
		inv := invocationFrom(ctx)
		pubPtr, msgPtr, msgLen, sigPtr := api.DecodeU32(stack[0]), api.DecodeU32(stack[1]), api.DecodeU32(stack[2]), api.DecodeU32(stack[3])
		if msgLen > MaxVerifyMessage {
			hostFail(inv, "ed25519_verify: message of %d bytes; at most %d", msgLen, MaxVerifyMessage)
		}
		// Views into guest memory: Verify only reads them, and the guest is
		// stopped while a host function runs.
		pub, ok1 := m.Memory().Read(pubPtr, ed25519.PublicKeySize)
		msg, ok2 := m.Memory().Read(msgPtr, msgLen)
		sig, ok3 := m.Memory().Read(sigPtr, ed25519.SignatureSize)
		if !ok1 || !ok2 || !ok3 {
			hostFail(inv, "ed25519_verify: a range is outside memory (pub %d, msg [%d, %d), sig %d)", pubPtr, msgPtr, uint64(msgPtr)+uint64(msgLen), sigPtr)
		}
		stack[0] = 0
		if ed25519.Verify(pub, msg, sig) {
			stack[0] = 1
		}
	}), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).Export("ed25519_verify")

	// sha256(msg, msg_len, out) writes the SHA-256 of msg to the 32 bytes
	// at out. Compiled to wasm, Go's SHA-256 costs about 1.6 µs a block;
	// here a few nanoseconds.
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
		inv := invocationFrom(ctx)
		msgPtr, msgLen, outPtr := api.DecodeU32(stack[0]), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
		if msgLen > MaxHashMessage {
			hostFail(inv, "sha256: message of %d bytes; at most %d", msgLen, MaxHashMessage)
		}
		msg, ok1 := m.Memory().Read(msgPtr, msgLen)
		out, ok2 := m.Memory().Read(outPtr, sha256.Size)
		if !ok1 || !ok2 {
			hostFail(inv, "sha256: a range is outside memory (msg [%d, %d), out %d)", msgPtr, uint64(msgPtr)+uint64(msgLen), outPtr)
		}
		sum := sha256.Sum256(msg)
		copy(out, sum[:])
	}), []api.ValueType{i32, i32, i32}, nil).Export("sha256")

	_, err := b.Instantiate(ctx)
	return err
}

// limitedBuffer keeps the first max bytes written to it. With
// failOnOverflow it records the overflow and fails the write; otherwise it
// drops the excess and marks the log as cut.
type limitedBuffer struct {
	mu             sync.Mutex
	buf            []byte
	max            int64
	failOnOverflow bool
	overflow       bool
	onOverflow     func() // called once, on the first failed write
}

const cutMarker = "\n[log cut at the function's log limit]\n"

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - int64(len(b.buf))
	if int64(len(p)) <= room {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	if b.failOnOverflow {
		if !b.overflow && b.onOverflow != nil {
			b.onOverflow()
		}
		b.overflow = true
		return 0, fmt.Errorf("output limit of %d bytes exceeded", b.max)
	}
	if !b.overflow {
		if room > 0 {
			b.buf = append(b.buf, p[:room]...)
		}
		b.buf = append(b.buf, cutMarker...)
		b.overflow = true
	}
	return len(p), nil
}

// Len returns how many bytes were kept.
func (b *limitedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buf)
}

// Bytes returns what was kept.
func (b *limitedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf
}

// switchWriter forwards a warm instance's stdout and stderr to the log of
// whichever invocation it is serving, and drops writes between invocations.
type switchWriter struct {
	target *limitedBuffer
}

func (w *switchWriter) Write(p []byte) (int, error) {
	if t := w.target; t != nil {
		return t.Write(p)
	}
	return len(p), nil
}
