package sandbox

import (
	"context"
	"fmt"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Host gives an invocation access to runtime services beyond its input and
// output. It may be nil. (The state, counter, randomness and time host
// functions use it.)
type Host interface{}

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
}

func invocationFrom(ctx context.Context) *invocation {
	inv, _ := ctx.Value(invocationKey{}).(*invocation)
	return inv
}

// hostFunctionNames are the functions of the vouch import module.
var hostFunctionNames = map[string]bool{
	"input_read":   true,
	"output_write": true,
	"error_write":  true,
}

var i32 = api.ValueTypeI32

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
