// Package wasmtest builds tiny WebAssembly modules for tests: modules that
// loop forever, recurse without end, trap, exit with a code or grow memory
// until they cannot. They are assembled here byte by byte, so the tests need
// no toolchain and every byte is visible.
package wasmtest

// Instructions used below.
const (
	opUnreachable = 0x00
	opBlock       = 0x02
	opLoop        = 0x03
	opIf          = 0x04
	opEnd         = 0x0b
	opBr          = 0x0c
	opBrIf        = 0x0d
	opCall        = 0x10
	opLocalGet    = 0x20
	opI32Const    = 0x41
	opI32Eqz      = 0x45
	opI32Eq       = 0x46
	opI32Sub      = 0x6b
	opMemoryGrow  = 0x40
	empty         = 0x40
	i32           = 0x7f
)

// Loop is a WASI command whose _start never returns: loop br 0 end.
func Loop() []byte {
	return command(nil, []byte{opLoop, empty, opBr, 0, opEnd, opEnd})
}

// Recurse is a WASI command that makes 2^62 calls without a single loop:
// f(n) { if n != 0 { f(n-1); f(n-1) } }. Only a check at function entry can
// stop it.
func Recurse() []byte {
	f := []byte{
		opLocalGet, 0, opI32Eqz, opIf, empty,
		opElse,
		opLocalGet, 0, opI32Const, 1, opI32Sub, opCall, 1,
		opLocalGet, 0, opI32Const, 1, opI32Sub, opCall, 1,
		opEnd, opEnd,
	}
	start := []byte{opI32Const, 62, opCall, 1, opEnd}
	return module(moduleSpec{
		types: [][]byte{
			{0x60, 0, 0},      // () -> ()
			{0x60, 1, i32, 0}, // (i32) -> ()
		},
		funcs: []fn{{typ: 0, body: start}, {typ: 1, body: f}},
	})
}

const opElse = 0x05

// Trap is a WASI command that executes unreachable.
func Trap() []byte {
	return command(nil, []byte{opUnreachable, opEnd})
}

// Exit is a WASI command that calls proc_exit(code).
func Exit(code byte) []byte {
	return command([]imp{{"wasi_snapshot_preview1", "proc_exit", 1}}, []byte{opI32Const, code & 0x3f, opCall, 0, opEnd})
}

// GrowForever is a WASI command that grows its memory a MiB at a time
// until memory.grow fails, then traps.
func GrowForever() []byte {
	return command(nil, []byte{
		opBlock, empty,
		opLoop, empty,
		opI32Const, 16, opMemoryGrow, 0, // 1 MiB at a time
		opI32Const, 0x7f, // -1
		opI32Eq, opBrIf, 1, // leave the block once memory.grow fails
		opBr, 0,
		opEnd,
		opEnd,
		opUnreachable,
		opEnd,
	})
}

// Import writes a WASI command that imports module.name as () -> () and does
// nothing. Use it to check what a runtime lets a module import.
func Import(module, name string) []byte {
	return command([]imp{{module, name, 0}}, []byte{opEnd})
}

// Empty is a module that exports nothing runnable.
func Empty() []byte {
	return module(moduleSpec{})
}

type imp struct {
	module, name string
	typ          byte // 0: () -> (), 1: (i32) -> ()
}

type fn struct {
	typ  byte
	body []byte
}

type moduleSpec struct {
	types   [][]byte
	imports []imp
	funcs   []fn // the first is exported as _start
}

// command builds a module with one exported _start of type () -> () and the
// given imports, typed () -> () or (i32) -> ().
func command(imports []imp, body []byte) []byte {
	return module(moduleSpec{
		types:   [][]byte{{0x60, 0, 0}, {0x60, 1, i32, 0}},
		imports: imports,
		funcs:   []fn{{typ: 0, body: body}},
	})
}

func module(s moduleSpec) []byte {
	out := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	if len(s.types) > 0 {
		var b []byte
		b = uleb(b, uint32(len(s.types)))
		for _, t := range s.types {
			b = append(b, t...)
		}
		out = sectionOf(out, 1, b)
	}
	if len(s.imports) > 0 {
		var b []byte
		b = uleb(b, uint32(len(s.imports)))
		for _, im := range s.imports {
			b = name(b, im.module)
			b = name(b, im.name)
			b = append(b, 0x00, im.typ)
		}
		out = sectionOf(out, 2, b)
	}
	if len(s.funcs) > 0 {
		b := uleb(nil, uint32(len(s.funcs)))
		for _, f := range s.funcs {
			b = append(b, f.typ)
		}
		out = sectionOf(out, 3, b)
	}
	// One memory of one page, no maximum, exported as "memory".
	out = sectionOf(out, 5, []byte{1, 0x00, 1})
	exports := [][]byte{append(name(nil, "memory"), 0x02, 0)}
	if len(s.funcs) > 0 {
		exports = append(exports, append(name(nil, "_start"), 0x00, byte(len(s.imports))))
	}
	eb := uleb(nil, uint32(len(exports)))
	for _, e := range exports {
		eb = append(eb, e...)
	}
	out = sectionOf(out, 7, eb)
	if len(s.funcs) > 0 {
		b := uleb(nil, uint32(len(s.funcs)))
		for _, f := range s.funcs {
			body := append([]byte{0}, f.body...) // no locals beyond parameters
			b = uleb(b, uint32(len(body)))
			b = append(b, body...)
		}
		out = sectionOf(out, 10, b)
	}
	return out
}

func sectionOf(out []byte, id byte, body []byte) []byte {
	out = append(out, id)
	out = uleb(out, uint32(len(body)))
	return append(out, body...)
}

func name(b []byte, s string) []byte {
	b = uleb(b, uint32(len(s)))
	return append(b, s...)
}

func uleb(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}
