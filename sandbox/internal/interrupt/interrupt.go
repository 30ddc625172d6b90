// Package interrupt makes a WebAssembly module stoppable from the outside at
// almost no cost.
//
// wazero can stop a running function when its context ends, but it does so
// by leaving compiled code for a Go check at every loop header, which made a
// Go guest four to six times slower (docs/BENCHMARKS.md). Without any check,
// compiled code can neither be stopped nor preempted: a guest that spins
// keeps its goroutine, and the next stop-the-world garbage collection waits
// for it forever, freezing the whole process.
//
// Instrument rewrites a module before it is compiled. It appends two mutable
// i32 globals, a flag exported as ExportName and a private budget, and at the
// start of every function body and at the head of every loop it inserts
//
//	global.get $budget  i32.eqz
//	if
//	  i32.const 0  memory.grow  drop       ;; leave compiled code: a safe point
//	  i32.const Budget  global.set $budget
//	  global.get $flag  if unreachable end  ;; stop when the host says so
//	end
//	global.get $budget  i32.const 1  i32.sub  global.set $budget
//
// Function entries and loop heads are the only places where wasm code can
// run for an unbounded time. Every Budget checks, the guest calls into the
// host (memory.grow by zero pages is a host call in wazero that changes
// nothing), where the Go scheduler can preempt it, and reads the flag. A host
// that sets the flag to a non-zero value stops the instance with a trap
// within Budget checks, a few tens of microseconds. Between host calls a
// check costs a few loads, a store and a branch.
//
// Instrument also takes away the two ways a module could otherwise escape
// its limits:
//
//   - A start section runs inside instantiation, before the host has the
//     instance in hand and can arm the flag. Instrument removes it and
//     exports the start function as StartExport instead; the host calls it,
//     under the flag, right after instantiation (AssemblyScript emits a start
//     section for top-level code, and wasm-ld one for memory initialisation
//     with shared memory).
//   - Tables live on the host's heap, outside linear memory and its limit.
//     With Options.MaxTableElements, the module's tables together may hold
//     at most that many elements: a larger minimum is refused, and every
//     table gets a maximum (Go emits tables without one) that keeps the sum
//     within the bound, so table.grow past it fails as the spec says.
//
// Every memory.grow and table.grow of the original code is followed by a
// check that sets a third global, exported as GrowFailedExport, when the
// grow failed: the host's evidence that a failed instance ran out of memory.
//
// The rewritten module is validated when wazero compiles it. The rewriter
// decodes every instruction of the WebAssembly 2.0 feature set and returns an
// error on anything it does not understand. It refuses code that names the
// new globals' indexes, which would have been invalid before rewriting, so a
// module cannot touch its own flag or budget.
package interrupt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Names of what Instrument exports. Every export name that starts with
// ReservedPrefix is refused in a module to instrument.
const (
	// ExportName is the export under which the flag global is reachable.
	ExportName = "vouch:interrupt"
	// StartExport is the export of the module's start function, if it had
	// a start section: call it once, before anything else.
	StartExport = "vouch:start"
	// GrowFailedExport is a mutable i32 global that the code sets to 1
	// when a memory.grow or table.grow fails. The host may reset it.
	GrowFailedExport = "vouch:grow_failed"
	// ReservedPrefix starts every export name the rewriter adds.
	ReservedPrefix = "vouch:"
)

// Options adjust the rewriting.
type Options struct {
	// MaxTableElements bounds the number of elements of all the module's
	// tables together, at their largest. Zero means no bound: tables keep
	// the limits they declare.
	MaxTableElements uint64
}

// TableLimitError reports a module whose tables start with more elements
// than Options.MaxTableElements allows.
type TableLimitError struct {
	Min, Max uint64 // the tables' minimum sizes together, and the bound
}

func (e *TableLimitError) Error() string {
	return fmt.Sprintf("its tables start with %d elements, more than the %d allowed", e.Min, e.Max)
}

// Budget is how many checks run between two host calls.
const Budget = 20000

// ErrUnsupported is wrapped by errors about modules the rewriter cannot
// instrument.
var ErrUnsupported = errors.New("cannot instrument module")

const (
	secCustom     = 0
	secImport     = 2
	secTable      = 4
	secMemory     = 5
	secGlobal     = 6
	secExport     = 7
	secStart      = 8
	secCode       = 10
	secDataCnt    = 12
	secTag        = 13
	opUnreach     = 0x00
	opIf          = 0x04
	opEnd         = 0x0b
	opGlobalGet   = 0x23
	opGlobalSet   = 0x24
	opDrop        = 0x1a
	opI32Const    = 0x41
	opI32Eqz      = 0x45
	opI32Sub      = 0x6b
	opI32Eq       = 0x46
	opMemoryGrow  = 0x40
	emptyBlock    = 0x40
	valI32        = 0x7f
	kindFunc      = 0x00
	kindGlobal    = 0x03
	miscTableGrow = 15
)

type section struct {
	id   byte
	body []byte
}

// Instrument returns a copy of module with the interrupt flag and checks
// inserted, its start section turned into an export and, with
// opts.MaxTableElements, its tables bounded.
func Instrument(module []byte, opts Options) ([]byte, error) {
	if len(module) < 8 || !bytes.Equal(module[:4], []byte("\x00asm")) || binary.LittleEndian.Uint32(module[4:8]) != 1 {
		return nil, fmt.Errorf("%w: not a WebAssembly 1.0 binary", ErrUnsupported)
	}
	r := &reader{b: module[8:]}
	var sections []section
	for !r.eof() {
		id := r.byte()
		n := r.u32()
		body := r.bytes(int(n))
		if r.err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnsupported, r.err)
		}
		sections = append(sections, section{id, body})
	}

	importedGlobals, definedGlobals := 0, 0
	memories := 0
	var exportNames []string
	for _, s := range sections {
		var err error
		switch s.id {
		case secImport:
			importedGlobals, memories, err = countImports(s.body)
		case secMemory:
			var n int
			n, err = countVec(s.body)
			memories += n
		case secGlobal:
			definedGlobals, err = countVec(s.body)
		case secExport:
			exportNames, err = exportNamesOf(s.body)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
		}
	}
	for _, n := range exportNames {
		if strings.HasPrefix(n, ReservedPrefix) {
			return nil, fmt.Errorf("%w: it exports %q; export names starting with %q are reserved for the runtime", ErrUnsupported, n, ReservedPrefix)
		}
	}
	if memories != 1 {
		return nil, fmt.Errorf("%w: it has %d memories; a function needs exactly one", ErrUnsupported, memories)
	}
	flag := uint32(importedGlobals + definedGlobals)
	budget, failed, scratch := flag+1, flag+2, flag+3
	rw := &rewriter{check: checkSequence(flag, budget), afterGrow: afterGrowSequence(failed, scratch), flag: flag}

	const globalCount = 4
	newGlobals := []byte{valI32, 0x01, opI32Const, 0x00, opEnd} // flag: mut i32 = 0
	newGlobals = append(newGlobals, valI32, 0x01, opI32Const)   // budget: mut i32 = Budget
	newGlobals = appendS32(newGlobals, Budget)
	newGlobals = append(newGlobals, opEnd)
	newGlobals = append(newGlobals, valI32, 0x01, opI32Const, 0x00, opEnd) // grow failed: mut i32 = 0
	newGlobals = append(newGlobals, valI32, 0x01, opI32Const, 0x00, opEnd) // scratch: mut i32 = 0
	exportCount := uint32(2)
	newExport := appendName(nil, ExportName)
	newExport = append(newExport, kindGlobal)
	newExport = appendU32(newExport, flag)
	newExport = appendName(newExport, GrowFailedExport)
	newExport = append(newExport, kindGlobal)
	newExport = appendU32(newExport, failed)
	for _, s := range sections {
		if s.id != secStart {
			continue
		}
		r := &reader{b: s.body}
		fn := r.u32()
		if r.err != nil || !r.eof() {
			return nil, fmt.Errorf("%w: malformed start section", ErrUnsupported)
		}
		newExport = appendName(newExport, StartExport)
		newExport = append(newExport, kindFunc)
		newExport = appendU32(newExport, fn)
		exportCount++
	}

	var out []section
	sawGlobal, sawExport := false, false
	// order gives each known section's position in the required order.
	order := func(id byte) int {
		switch id {
		case 1, 2, 3, 4, 5:
			return int(id)
		case secTag:
			return 6
		case secGlobal:
			return 7
		case secExport:
			return 8
		case 8, 9:
			return int(id) + 1
		case secDataCnt:
			return 11
		case secCode:
			return 12
		case 11:
			return 13
		}
		return -1
	}
	flush := func(next int) {
		if !sawGlobal && next > order(secGlobal) {
			out = append(out, section{secGlobal, append(appendU32(nil, globalCount), newGlobals...)})
			sawGlobal = true
		}
		if !sawExport && next > order(secExport) {
			out = append(out, section{secExport, append(appendU32(nil, exportCount), newExport...)})
			sawExport = true
		}
	}
	for _, s := range sections {
		if s.id == secCustom {
			name, ok := customName(s.body)
			if ok && strings.HasPrefix(name, ".debug") {
				continue // DWARF offsets would be wrong after rewriting.
			}
			out = append(out, s)
			continue
		}
		pos := order(s.id)
		if pos < 0 {
			return nil, fmt.Errorf("%w: unknown section %d", ErrUnsupported, s.id)
		}
		flush(pos)
		switch s.id {
		case secStart:
			continue // exported as StartExport instead
		case secTable:
			if opts.MaxTableElements > 0 {
				b, err := boundTables(s.body, opts.MaxTableElements)
				if err != nil {
					return nil, err
				}
				s.body = b
			}
		case secGlobal:
			b, err := appendToVec(s.body, newGlobals, globalCount)
			if err != nil {
				return nil, fmt.Errorf("%w: global section: %v", ErrUnsupported, err)
			}
			s.body, sawGlobal = b, true
		case secExport:
			b, err := appendToVec(s.body, newExport, exportCount)
			if err != nil {
				return nil, fmt.Errorf("%w: export section: %v", ErrUnsupported, err)
			}
			s.body, sawExport = b, true
		case secCode:
			b, err := rw.code(s.body)
			if err != nil {
				return nil, fmt.Errorf("%w: code section: %v", ErrUnsupported, err)
			}
			s.body = b
		}
		out = append(out, s)
	}
	flush(1 << 30)

	res := append([]byte(nil), module[:8]...)
	for _, s := range out {
		res = append(res, s.id)
		res = appendU32(res, uint32(len(s.body)))
		res = append(res, s.body...)
	}
	return res, nil
}

func customName(body []byte) (string, bool) {
	r := &reader{b: body}
	n := r.u32()
	name := r.bytes(int(n))
	return string(name), r.err == nil
}

func countVec(body []byte) (int, error) {
	r := &reader{b: body}
	n := r.u32()
	return int(n), r.err
}

func appendToVec(body, items []byte, count uint32) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	out := appendU32(nil, n+count)
	out = append(out, r.b...)
	return append(out, items...), nil
}

// checkSequence returns the instructions inserted at every check site.
func checkSequence(flag, budget uint32) []byte {
	var b []byte
	b = append(appendU32(append(b, opGlobalGet), budget), opI32Eqz, opIf, emptyBlock)
	b = append(b, opI32Const, 0x00, opMemoryGrow, 0x00, opDrop)
	b = appendS32(append(b, opI32Const), Budget)
	b = appendU32(append(b, opGlobalSet), budget)
	b = append(appendU32(append(b, opGlobalGet), flag), opIf, emptyBlock, opUnreach, opEnd)
	b = append(b, opEnd)
	b = appendU32(append(b, opGlobalGet), budget)
	b = append(b, opI32Const, 0x01, opI32Sub)
	b = appendU32(append(b, opGlobalSet), budget)
	return b
}

// afterGrowSequence returns the instructions inserted after every
// memory.grow and table.grow: they set the failed global when the result
// is -1 and leave the result on the stack.
//
//	global.set $scratch  global.get $scratch  i32.const -1  i32.eq
//	if  i32.const 1  global.set $failed  end
//	global.get $scratch
func afterGrowSequence(failed, scratch uint32) []byte {
	var b []byte
	b = appendU32(append(b, opGlobalSet), scratch)
	b = appendU32(append(b, opGlobalGet), scratch)
	b = append(b, opI32Const, 0x7f, opI32Eq, opIf, emptyBlock)
	b = append(b, opI32Const, 0x01)
	b = appendU32(append(b, opGlobalSet), failed)
	b = append(b, opEnd)
	return appendU32(append(b, opGlobalGet), scratch)
}

// boundTables rewrites a table section so that the tables together hold
// at most max elements: a table whose maximum is missing or too large gets
// the room that is left, in order.
func boundTables(body []byte, max uint64) ([]byte, error) {
	type table struct {
		typ      []byte
		min, max uint64
		hasMax   bool
	}
	r := &reader{b: body}
	n := r.u32()
	var tables []table
	var sumMin uint64
	for i := uint32(0); i < n && r.err == nil; i++ {
		start := len(body) - len(r.b)
		switch b := r.byte(); b {
		case 0x40:
			return nil, fmt.Errorf("%w: table %d has an initializer expression, which functions may not use", ErrUnsupported, i)
		case 0x63, 0x64: // (ref null? heaptype)
			r.sleb(33)
		}
		t := table{typ: body[start : len(body)-len(r.b)]}
		switch flag := r.byte(); flag {
		case 0x00:
			t.min = uint64(r.u32())
		case 0x01:
			t.min, t.max, t.hasMax = uint64(r.u32()), uint64(r.u32()), true
			if r.err == nil && t.max < t.min {
				return nil, fmt.Errorf("%w: table %d has minimum %d over its maximum %d", ErrUnsupported, i, t.min, t.max)
			}
		default:
			if r.err == nil {
				return nil, fmt.Errorf("%w: table %d has limits flag %#x (shared or 64-bit tables are not supported)", ErrUnsupported, i, flag)
			}
		}
		sumMin += t.min
		tables = append(tables, t)
	}
	if r.err != nil || !r.eof() {
		return nil, fmt.Errorf("%w: malformed table section", ErrUnsupported)
	}
	if sumMin > max || sumMin > math.MaxUint32 {
		return nil, &TableLimitError{Min: sumMin, Max: max}
	}
	room := max - sumMin
	out := appendU32(nil, n)
	for _, t := range tables {
		top := min(t.min+room, math.MaxUint32)
		if t.hasMax && t.max < top {
			top = t.max
		}
		room -= top - t.min
		out = append(out, t.typ...)
		out = append(out, 0x01)
		out = appendU32(out, uint32(t.min))
		out = appendU32(out, uint32(top))
	}
	return out, nil
}

func countImports(body []byte) (globals, memories int, err error) {
	r := &reader{b: body}
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		mod := string(r.bytes(int(r.u32())))
		name := string(r.bytes(int(r.u32())))
		switch kind := r.byte(); kind {
		case 0x00: // func: typeidx
			r.u32()
		case 0x01, 0x03, 0x04: // table, global, tag
			// The runtime provides only functions; such an import could
			// never be satisfied.
			return 0, 0, fmt.Errorf("it imports a %s (%s.%s); functions may import only functions", [...]string{1: "table", 3: "global", 4: "tag"}[kind], mod, name)
		case 0x02: // memory: limits
			r.limits()
			memories++
		default:
			return 0, 0, fmt.Errorf("import kind %#x", kind)
		}
	}
	return globals, memories, r.err
}

func exportNamesOf(body []byte) ([]string, error) {
	r := &reader{b: body}
	n := r.u32()
	var names []string
	for i := uint32(0); i < n && r.err == nil; i++ {
		names = append(names, string(r.bytes(int(r.u32()))))
		r.byte()
		r.u32()
	}
	return names, r.err
}

// rewriter holds what rewriting inserts into function bodies.
type rewriter struct {
	check     []byte // at function entries and loop heads
	afterGrow []byte // after memory.grow and table.grow
	flag      uint32 // the first global index the module may not name
}

func (rw *rewriter) code(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(make([]byte, 0, len(body)+len(body)/8), n)
	for i := uint32(0); i < n; i++ {
		size := r.u32()
		fn := r.bytes(int(size))
		if r.err != nil {
			return nil, r.err
		}
		nb, err := rw.body(fn)
		if err != nil {
			return nil, fmt.Errorf("function %d: %v", i, err)
		}
		out = appendU32(out, uint32(len(nb)))
		out = append(out, nb...)
	}
	if !r.eof() {
		return nil, errors.New("trailing bytes")
	}
	return out, nil
}

func (rw *rewriter) body(fn []byte) ([]byte, error) {
	check, flag := rw.check, rw.flag
	r := &reader{b: fn}
	// Locals: vec of (count, valtype).
	nl := r.u32()
	for i := uint32(0); i < nl && r.err == nil; i++ {
		r.u32()
		r.byte()
	}
	if r.err != nil {
		return nil, r.err
	}
	localsEnd := len(fn) - len(r.b)
	out := make([]byte, 0, len(fn)+len(check)*4)
	out = append(out, fn[:localsEnd]...)
	out = append(out, check...)
	depth := 1
	last := localsEnd
	// insert puts seq at the reader's position.
	insert := func(seq []byte) {
		pos := len(fn) - len(r.b)
		out = append(out, fn[last:pos]...)
		out = append(out, seq...)
		last = pos
	}
	for depth > 0 {
		if r.eof() {
			return nil, errors.New("body ends before its final end")
		}
		op := r.byte()
		switch op {
		case 0x02, 0x04: // block, if
			r.blockType()
			depth++
		case 0x03: // loop: the check goes right after the block type
			r.blockType()
			depth++
			if r.err != nil {
				return nil, r.err
			}
			insert(check)
		case opEnd:
			depth--
		case 0x00, 0x01, 0x05, 0x0f, 0x1a, 0x1b, 0xd1:
		case 0x23, 0x24: // global.get, global.set
			if idx := r.u32(); idx >= flag && r.err == nil {
				// Only the flag itself would make this valid.
				return nil, fmt.Errorf("global index %d is out of range", idx)
			}
		case 0x0c, 0x0d, 0x10, 0x20, 0x21, 0x22, 0x25, 0x26, 0xd2:
			r.u32()
		case 0x0e: // br_table
			cnt := r.u32()
			for j := uint32(0); j <= cnt && r.err == nil; j++ {
				r.u32()
			}
		case 0x11: // call_indirect typeidx tableidx
			r.u32()
			r.u32()
		case 0x1c: // select t*
			cnt := r.u32()
			for j := uint32(0); j < cnt && r.err == nil; j++ {
				r.byte()
			}
		case 0x3f: // memory.size
			r.u32()
		case opMemoryGrow:
			r.u32()
			if r.err == nil {
				insert(rw.afterGrow)
			}
		case 0x41:
			r.sleb(32)
		case 0x42:
			r.sleb(64)
		case 0x43:
			r.bytes(4)
		case 0x44:
			r.bytes(8)
		case 0xd0: // ref.null t
			r.byte()
		case 0xfc:
			sub, err := r.miscImmediates()
			if err != nil {
				return nil, err
			}
			if sub == miscTableGrow {
				insert(rw.afterGrow)
			}
		case 0xfd:
			if err := r.simdImmediates(); err != nil {
				return nil, err
			}
		default:
			switch {
			case op >= 0x28 && op <= 0x3e: // loads and stores: memarg
				r.u32()
				r.u32()
			case op >= 0x45 && op <= 0xc4: // numeric, no immediates
			default:
				return nil, fmt.Errorf("unsupported opcode %#x", op)
			}
		}
		if r.err != nil {
			return nil, r.err
		}
	}
	if !r.eof() {
		return nil, errors.New("bytes after the function's final end")
	}
	out = append(out, fn[last:]...)
	return out, nil
}

// miscImmediates skips the immediates of a 0xfc instruction and returns
// its sub-opcode.
func (r *reader) miscImmediates() (uint32, error) {
	sub := r.u32()
	switch sub {
	case 0, 1, 2, 3, 4, 5, 6, 7: // saturating truncations
	case 8: // memory.init dataidx 0x00
		r.u32()
		r.byte()
	case 9, 13, 15, 16, 17: // data.drop, elem.drop, table.grow/size/fill
		r.u32()
	case 10: // memory.copy 0x00 0x00
		r.byte()
		r.byte()
	case 11: // memory.fill 0x00
		r.byte()
	case 12, 14: // table.init, table.copy
		r.u32()
		r.u32()
	default:
		return sub, fmt.Errorf("unsupported opcode 0xfc %d", sub)
	}
	return sub, r.err
}

func (r *reader) simdImmediates() error {
	sub := r.u32()
	switch {
	case sub <= 0x0b, sub == 0x5c, sub == 0x5d: // loads, stores: memarg
		r.u32()
		r.u32()
	case sub == 0x0c, sub == 0x0d: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 0x15 && sub <= 0x22: // extract/replace lane
		r.byte()
	case sub >= 0x54 && sub <= 0x5b: // load/store lane: memarg lane
		r.u32()
		r.u32()
		r.byte()
	case sub <= 0x113: // no immediates
	default:
		return fmt.Errorf("unsupported opcode 0xfd %d", sub)
	}
	return r.err
}

type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("unexpected end of module")

func (r *reader) eof() bool { return len(r.b) == 0 }

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.fail(errShort)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || len(r.b) < n {
		r.fail(errShort)
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *reader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail(errors.New("LEB128 u32 too long"))
	return 0
}

func (r *reader) sleb(bits int) {
	maxBytes := (bits + 6) / 7
	for i := 0; i < maxBytes; i++ {
		c := r.byte()
		if r.err != nil || c&0x80 == 0 {
			return
		}
	}
	r.fail(errors.New("LEB128 signed integer too long"))
}

// blockType skips a block type: 0x40, a value type, or an s33 type index.
func (r *reader) blockType() { r.sleb(33) }

func (r *reader) limits() {
	switch flag := r.byte(); flag {
	case 0x00:
		r.u32()
	case 0x01, 0x03:
		r.u32()
		r.u32()
	default:
		r.fail(fmt.Errorf("limits flag %#x", flag))
	}
}

func appendU32(b []byte, v uint32) []byte {
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

func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}
