//go:build wasip1

package guest

import "unsafe"

// The host functions of the "vouch" import module (docs/FORMATS.md,
// "Guest ABI"). Pointers are offsets into the guest's linear memory.

//go:wasmimport vouch input_read
func hostInputRead(ptr unsafe.Pointer, n uint32) uint32

//go:wasmimport vouch output_write
func hostOutputWrite(ptr unsafe.Pointer, n uint32) uint32

//go:wasmimport vouch error_write
func hostErrorWrite(ptr unsafe.Pointer, n uint32) uint32

// abiVersion tells the runtime which guest ABI this module speaks.
//
//go:wasmexport vouch_abi_v1
func abiVersion() uint32 { return 1 }

// vouchRun is the reactor entry point: the runtime calls it once per
// invocation with the input's length, the guest pulls the input with
// input_read and pushes its result with output_write or error_write.
// It returns 0 on success and 1 when the handler failed.
//
//go:wasmexport vouch_run
func vouchRun(inputLen uint32) uint32 {
	if handler == nil {
		writeError("guest: no handler registered (call guest.Handle in init)")
		return 1
	}
	in := make([]byte, inputLen)
	if inputLen > 0 {
		if hostInputRead(unsafe.Pointer(&in[0]), inputLen) != inputLen {
			writeError("guest: short input read")
			return 1
		}
	}
	out, err := handler(in)
	if err != nil {
		writeError(err.Error())
		return 1
	}
	if len(out) > 0 {
		if hostOutputWrite(unsafe.Pointer(&out[0]), uint32(len(out))) != 0 {
			// The host refused the output (over the limit); it has
			// recorded why.
			return 1
		}
	}
	return 0
}

func writeError(msg string) {
	if msg == "" {
		msg = "error"
	}
	b := []byte(msg)
	hostErrorWrite(unsafe.Pointer(&b[0]), uint32(len(b)))
}
