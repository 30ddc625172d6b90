// Package wasmtest builds tiny WebAssembly modules for tests: modules that
// loop forever (in _start or in a start section), recurse without end, trap,
// exit with a code, grow memory or a table until they cannot, or declare a
// huge table. They are assembled here byte by byte, so the tests need
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
	opGlobalGet   = 0x23
	opGlobalSet   = 0x24
	opDrop        = 0x1a
	opReturn      = 0x0f
	opI32Load     = 0x28
	opI32Store    = 0x36
	opRefNull     = 0xd0
	opMisc        = 0xfc
	miscTableGrow = 15
	funcref       = 0x70
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

// GrowTableForever is a WASI command that grows a funcref table (declared
// without a maximum, as Go does) by 65536 elements at a time until
// table.grow fails, then traps. Without a bound on tables it takes the
// host's heap: 512 KiB more per step, outside linear memory.
func GrowTableForever() []byte {
	return module(moduleSpec{
		types:  [][]byte{{0x60, 0, 0}},
		funcs:  []fn{{typ: 0, body: growTableLoop()}},
		tables: []table{{min: 1}},
	})
}

func growTableLoop() []byte {
	return []byte{
		opBlock, empty,
		opLoop, empty,
		opRefNull, funcref,
		opI32Const, 0x80, 0x80, 0x04, // 65536
		opMisc, miscTableGrow, 0,
		opI32Const, 0x7f, // -1
		opI32Eq, opBrIf, 1, // leave the block once table.grow fails
		opBr, 0,
		opEnd,
		opEnd,
		opUnreachable,
		opEnd,
	}
}

// Table is a WASI command that does nothing but declares a funcref table
// of min elements, with a maximum of max unless max is 0.
func Table(min, max uint32) []byte {
	return module(moduleSpec{
		types:  [][]byte{{0x60, 0, 0}},
		funcs:  []fn{{typ: 0, body: []byte{opEnd}}},
		tables: []table{{min: min, max: max, hasMax: max != 0}},
	})
}

// StartLoop is a module whose start section names a function that loops
// forever: wasm runs it during instantiation, before any export is called.
// With reactor it is a vouch reactor (exports _initialize and vouch_run),
// otherwise a WASI command.
func StartLoop(reactor bool) []byte {
	loop := []byte{opLoop, empty, opBr, 0, opEnd, opEnd}
	if reactor {
		return module(moduleSpec{
			types: [][]byte{{0x60, 0, 0}, {0x60, 1, i32, 1, i32}},
			funcs: []fn{
				{typ: 0, body: loop},
				{typ: 0, body: []byte{opEnd}},                // _initialize
				{typ: 1, body: []byte{opI32Const, 0, opEnd}}, // vouch_run
			},
			exports: []export{{"_initialize", 1}, {"vouch_run", 2}},
			start:   ptr(0),
		})
	}
	return module(moduleSpec{
		types:   [][]byte{{0x60, 0, 0}},
		funcs:   []fn{{typ: 0, body: loop}, {typ: 0, body: []byte{opEnd}}},
		exports: []export{{"_start", 1}},
		start:   ptr(0),
	})
}

// StartSetsGlobal is a WASI command whose start section sets a global to 1
// and whose _start traps unless the global is 1: it succeeds only if the
// start function ran before _start.
func StartSetsGlobal() []byte {
	return module(moduleSpec{
		types: [][]byte{{0x60, 0, 0}},
		funcs: []fn{
			{typ: 0, body: []byte{opI32Const, 1, opGlobalSet, 0, opEnd}},
			{typ: 0, body: []byte{opGlobalGet, 0, opI32Const, 1, opI32Eq, opBrIf, 0, opUnreachable, opEnd}},
		},
		globals: [][]byte{{i32, 0x01, opI32Const, 0, opEnd}}, // mut i32 = 0
		exports: []export{{"_start", 1}},
		start:   ptr(0),
	})
}

// GrowFailsThenTraps is a vouch reactor whose vouch_run(n), n being the
// input's length, tries to grow memory by 65535 pages when n is 1 (which
// fails under any limit) and returns 0, and traps for any other n. It tells
// a failed grow in an earlier invocation of a warm instance from one in
// this invocation.
func GrowFailsThenTraps() []byte {
	return module(moduleSpec{
		types: [][]byte{{0x60, 0, 0}, {0x60, 1, i32, 1, i32}},
		funcs: []fn{
			{typ: 0, body: []byte{opEnd}}, // _initialize
			{typ: 1, body: []byte{
				opLocalGet, 0, opI32Const, 1, opI32Eq,
				opIf, empty,
				opI32Const, 0xff, 0xff, 0x03, opMemoryGrow, 0, opDrop, // 65535 pages
				opI32Const, 0, opReturn,
				opEnd,
				opUnreachable,
				opEnd,
			}},
		},
		exports: []export{{"_initialize", 0}, {"vouch_run", 1}},
	})
}

func ptr(v uint32) *uint32 { return &v }

// LogInput is a WASI command that copies the first KiB of its stdin to
// stderr and to stdout, then exits with code (proc_exit only when code is
// not 0).
func LogInput(code byte) []byte {
	body := []byte{
		opI32Const, 0, opI32Const, 16, opI32Store, 2, 0, // iov.buf = 16
		opI32Const, 4, opI32Const, 0x80, 0x08, opI32Store, 2, 0, // iov.len = 1024
		opI32Const, 0, opI32Const, 0, opI32Const, 1, opI32Const, 8, opCall, 0, opDrop, // fd_read(0, iov, 1, &n)
		opI32Const, 4, opI32Const, 8, opI32Load, 2, 0, opI32Store, 2, 0, // iov.len = n
		opI32Const, 2, opI32Const, 0, opI32Const, 1, opI32Const, 12, opCall, 1, opDrop, // fd_write(2, …)
		opI32Const, 1, opI32Const, 0, opI32Const, 1, opI32Const, 12, opCall, 1, opDrop, // fd_write(1, …)
	}
	if code != 0 {
		body = append(body, opI32Const, code&0x3f, opCall, 2)
	}
	return module(moduleSpec{
		types: [][]byte{{0x60, 0, 0}, {0x60, 1, i32, 0}, {0x60, 4, i32, i32, i32, i32, 1, i32}},
		imports: []imp{
			{"wasi_snapshot_preview1", "fd_read", 2},
			{"wasi_snapshot_preview1", "fd_write", 2},
			{"wasi_snapshot_preview1", "proc_exit", 1},
		},
		funcs: []fn{{typ: 0, body: append(body, opEnd)}},
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
	typ          byte // a type index: in command modules 0 is () -> (), 1 (i32) -> ()
}

type fn struct {
	typ  byte
	body []byte
}

type table struct {
	min, max uint32
	hasMax   bool
}

type export struct {
	name string
	fn   uint32 // function index
}

type moduleSpec struct {
	types   [][]byte
	imports []imp
	funcs   []fn // the first is exported as _start, unless exports is set
	tables  []table
	globals [][]byte // each: valtype mut init-expression
	// exports are function exports besides "memory"; nil means the first
	// function as _start.
	exports []export
	start   *uint32 // the start section's function index, if any
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
	if len(s.tables) > 0 {
		b := uleb(nil, uint32(len(s.tables)))
		for _, t := range s.tables {
			b = append(b, funcref)
			if t.hasMax {
				b = uleb(uleb(append(b, 0x01), t.min), t.max)
			} else {
				b = uleb(append(b, 0x00), t.min)
			}
		}
		out = sectionOf(out, 4, b)
	}
	// One memory of one page, no maximum, exported as "memory".
	out = sectionOf(out, 5, []byte{1, 0x00, 1})
	if len(s.globals) > 0 {
		b := uleb(nil, uint32(len(s.globals)))
		for _, g := range s.globals {
			b = append(b, g...)
		}
		out = sectionOf(out, 6, b)
	}
	exports := [][]byte{append(name(nil, "memory"), 0x02, 0)}
	switch {
	case s.exports != nil:
		for _, e := range s.exports {
			exports = append(exports, uleb(append(name(nil, e.name), 0x00), uint32(len(s.imports))+e.fn))
		}
	case len(s.funcs) > 0:
		exports = append(exports, append(name(nil, "_start"), 0x00, byte(len(s.imports))))
	}
	eb := uleb(nil, uint32(len(exports)))
	for _, e := range exports {
		eb = append(eb, e...)
	}
	out = sectionOf(out, 7, eb)
	if s.start != nil {
		out = sectionOf(out, 8, uleb(nil, uint32(len(s.imports))+*s.start))
	}
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
