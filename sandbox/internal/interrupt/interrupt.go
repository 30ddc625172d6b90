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

// Budget is how much work runs between two host calls, in units of about
// one simple instruction (about 1 ns of CPU): a check pays for the
// instructions of the region it guards, and bulk operations pay for the
// bytes or elements they touch.
const Budget = 1 << 16

// maxRegion is the most instructions one check pays for: longer straight
// code gets further checks every maxRegion instructions.
const maxRegion = 256

// ErrUnsupported is wrapped by errors about modules the rewriter cannot
// instrument.
var ErrUnsupported = errors.New("cannot instrument module")

const (
	secCustom      = 0
	secType        = 1
	secImport      = 2
	secFunc        = 3
	secTable       = 4
	secMemory      = 5
	secGlobal      = 6
	secExport      = 7
	secStart       = 8
	secElem        = 9
	secCode        = 10
	secData        = 11
	secDataCnt     = 12
	secTag         = 13
	opUnreach      = 0x00
	opIf           = 0x04
	opEnd          = 0x0b
	opGlobalGet    = 0x23
	opGlobalSet    = 0x24
	opCall         = 0x10
	opDrop         = 0x1a
	opI32Const     = 0x41
	opI32LtS       = 0x48
	opI32Sub       = 0x6b
	opMemoryGrow   = 0x40
	emptyBlock     = 0x40
	valI32         = 0x7f
	kindFunc       = 0x00
	kindGlobal     = 0x03
	miscMemoryInit = 8
	miscMemoryCopy = 10
	miscMemoryFill = 11
	miscTableInit  = 12
	miscTableCopy  = 14
	miscTableGrow  = 15
	miscTableFill  = 17
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
	info := &moduleInfo{}
	var exportNames []string
	for _, s := range sections {
		var err error
		switch s.id {
		case secType:
			info.types, err = countVec(s.body)
		case secImport:
			var imported imports
			imported, err = countImports(s.body)
			importedGlobals, memories, info.importedFuncs = imported.globals, imported.memories, imported.funcs
		case secFunc:
			info.definedFuncs, err = countVec(s.body)
		case secTable:
			info.tables, err = tableTypes(s.body)
		case secMemory:
			var n uint32
			n, err = countVec(s.body)
			memories += int(n)
		case secGlobal:
			var n uint32
			n, err = countVec(s.body)
			definedGlobals = int(n)
		case secExport:
			exportNames, err = exportNamesOf(s.body)
		case secElem:
			info.elemLen, err = segmentLengths(s.body, true)
		case secData:
			info.dataLen, err = segmentLengths(s.body, false)
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
	budget, failed := flag+1, flag+2
	rw := &rewriter{flag: flag, budget: budget, failed: failed, info: info, helperIndex: map[helperKey]uint32{}}
	// The code section is rewritten first: it decides which helpers the
	// type and function sections must declare.
	var code []byte
	for _, s := range sections {
		if s.id == secCode {
			b, err := rw.code(s.body)
			if err != nil {
				return nil, fmt.Errorf("%w: code section: %v", ErrUnsupported, err)
			}
			code = b
		}
	}
	var newTypes, newFuncs []byte
	for i, h := range rw.helpers {
		newTypes = append(newTypes, h.typ...)
		newFuncs = appendU32(newFuncs, info.types+uint32(i))
	}

	const globalCount = 3
	newGlobals := []byte{valI32, 0x01, opI32Const, 0x00, opEnd} // flag: mut i32 = 0
	newGlobals = append(newGlobals, valI32, 0x01, opI32Const)   // budget: mut i32 = Budget
	newGlobals = appendS32(newGlobals, Budget)
	newGlobals = append(newGlobals, opEnd)
	newGlobals = append(newGlobals, valI32, 0x01, opI32Const, 0x00, opEnd) // grow failed: mut i32 = 0
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
	sawGlobal, sawExport, sawType, sawFunc := false, false, false, false
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
		if !sawType && len(newTypes) > 0 && next > order(secType) {
			out = append(out, section{secType, append(appendU32(nil, uint32(len(rw.helpers))), newTypes...)})
			sawType = true
		}
		if !sawFunc && len(newFuncs) > 0 && next > order(secFunc) {
			out = append(out, section{secFunc, append(appendU32(nil, uint32(len(rw.helpers))), newFuncs...)})
			sawFunc = true
		}
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
		case secType:
			b, err := appendToVec(s.body, newTypes, uint32(len(rw.helpers)))
			if err != nil {
				return nil, fmt.Errorf("%w: type section: %v", ErrUnsupported, err)
			}
			s.body, sawType = b, true
		case secFunc:
			b, err := appendToVec(s.body, newFuncs, uint32(len(rw.helpers)))
			if err != nil {
				return nil, fmt.Errorf("%w: function section: %v", ErrUnsupported, err)
			}
			s.body, sawFunc = b, true
		case secCode:
			s.body = code
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

func countVec(body []byte) (uint32, error) {
	r := &reader{b: body}
	n := r.u32()
	return n, r.err
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

// imports counts what a module imports.
type imports struct {
	globals, memories int
	funcs             uint32
}

func countImports(body []byte) (imports, error) {
	var c imports
	r := &reader{b: body}
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		mod := string(r.bytes(int(r.u32())))
		name := string(r.bytes(int(r.u32())))
		switch kind := r.byte(); kind {
		case 0x00: // func: typeidx
			r.u32()
			c.funcs++
		case 0x01, 0x03, 0x04: // table, global, tag
			// The runtime provides only functions; such an import could
			// never be satisfied.
			return c, fmt.Errorf("it imports a %s (%s.%s); functions may import only functions", [...]string{1: "table", 3: "global", 4: "tag"}[kind], mod, name)
		case 0x02: // memory: limits
			r.limits()
			c.memories++
		default:
			return c, fmt.Errorf("import kind %#x", kind)
		}
	}
	return c, r.err
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

// rewriter rewrites function bodies. It adds the helpers that bulk
// operations are turned into as it finds them.
type rewriter struct {
	flag, budget, failed uint32 // the added globals; flag is also the first index code may not name
	info                 *moduleInfo
	helpers              []helper
	helperIndex          map[helperKey]uint32
}

// code rewrites a code section and appends the helpers its functions use.
func (rw *rewriter) code(body []byte) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	if r.err == nil && n != rw.info.definedFuncs {
		return nil, fmt.Errorf("%d bodies for %d functions", n, rw.info.definedFuncs)
	}
	fns := make([]byte, 0, len(body)+len(body)/4)
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
		fns = appendU32(fns, uint32(len(nb)))
		fns = append(fns, nb...)
	}
	if !r.eof() {
		return nil, errors.New("trailing bytes")
	}
	for _, h := range rw.helpers {
		fns = appendU32(fns, uint32(len(h.body)))
		fns = append(fns, h.body...)
	}
	return append(appendU32(nil, n+uint32(len(rw.helpers))), fns...), nil
}

// chargeSlot is the placeholder of a check's charge, patched once the size
// of the code it pays for is known: i32.const in five LEB128 bytes.
var chargeSlot = []byte{opI32Const, 0x80, 0x80, 0x80, 0x80, 0x00}

func (rw *rewriter) body(fn []byte) ([]byte, error) {
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
	out := make([]byte, 0, len(fn)+len(fn)/4+64)
	out = append(out, fn[:localsEnd]...)
	last := localsEnd
	// copyTo copies the original code up to position pos.
	copyTo := func(pos int) {
		out = append(out, fn[last:pos]...)
		last = pos
	}
	pos := func() int { return len(fn) - len(r.b) }
	// A region is the code that one check pays for: what runs from the
	// check to the next one, nested loops (which have their own) excluded.
	type region struct{ slot, count int }
	check := func() region {
		copyTo(pos())
		slot := len(out) + len(appendU32([]byte{opGlobalGet}, rw.budget)) + 1
		out = rw.appendCheck(out, chargeSlot)
		return region{slot: slot}
	}
	settle := func(g region) {
		putSlot(out[g.slot:g.slot+5], uint32(max(g.count, 1)))
	}
	regions := []region{check()}
	loops := []bool{false} // per open block: whether it is a loop
	flagCheck := rw.flagCheck()
	for len(loops) > 0 {
		if r.eof() {
			return nil, errors.New("body ends before its final end")
		}
		start := pos()
		op := r.byte()
		regions[len(regions)-1].count++
		switch op {
		case 0x02, 0x04: // block, if
			r.blockType()
			loops = append(loops, false)
		case 0x03: // loop: its check goes right after the block type
			r.blockType()
			if r.err != nil {
				return nil, r.err
			}
			loops = append(loops, true)
			regions = append(regions, check())
		case opEnd:
			if loops[len(loops)-1] {
				settle(regions[len(regions)-1])
				regions = regions[:len(regions)-1]
			}
			loops = loops[:len(loops)-1]
		case 0x00, 0x01, 0x05, 0x0f, 0x1a, 0x1b, 0xd1:
		case 0x23, 0x24: // global.get, global.set
			if idx := r.u32(); idx >= rw.flag && r.err == nil {
				// Only the flag itself would make this valid.
				return nil, fmt.Errorf("global index %d is out of range", idx)
			}
		case 0x10: // call: a call into the host gets the flag read after it
			if idx := r.u32(); idx < rw.info.importedFuncs && r.err == nil {
				copyTo(pos())
				out = append(out, flagCheck...)
			}
		case 0x11: // call_indirect typeidx tableidx: it may reach the host
			r.u32()
			r.u32()
			if r.err == nil {
				copyTo(pos())
				out = append(out, flagCheck...)
			}
		case 0x0c, 0x0d, 0x20, 0x21, 0x22, 0x25, 0x26, 0xd2:
			r.u32()
		case 0x0e: // br_table
			cnt := r.u32()
			for j := uint32(0); j < cnt && r.err == nil; j++ {
				r.u32()
			}
			r.u32()
		case 0x1c: // select t*
			cnt := r.u32()
			for j := uint32(0); j < cnt && r.err == nil; j++ {
				r.byte()
			}
		case 0x3f: // memory.size 0x00
			if m := r.byte(); m != 0 && r.err == nil {
				return nil, fmt.Errorf("memory.size of memory %d", m)
			}
		case opMemoryGrow:
			if m := r.byte(); m != 0 && r.err == nil {
				return nil, fmt.Errorf("memory.grow of memory %d", m)
			}
			if r.err == nil {
				rw.callHelper(&out, fn, &last, start, pos(), helperKey{op: opMemoryGrow})
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
			r.sleb(33)
		case 0xfc:
			m, err := r.misc()
			if err != nil {
				return nil, err
			}
			if m.bulk() {
				rw.callHelper(&out, fn, &last, start, pos(), helperKey{op: 0xfc, sub: m.sub, a: m.a, b: m.b})
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
		// Straight-line code is cut into regions of at most maxRegion
		// instructions, so that no check pays for more.
		if g := &regions[len(regions)-1]; len(loops) > 0 && g.count >= maxRegion {
			settle(*g)
			*g = check()
		}
	}
	if !r.eof() {
		return nil, errors.New("bytes after the function's final end")
	}
	settle(regions[0])
	out = append(out, fn[last:]...)
	return out, nil
}

// callHelper replaces the instruction at fn[start:end] with a call to the
// helper for key.
func (rw *rewriter) callHelper(out *[]byte, fn []byte, last *int, start, end int, key helperKey) {
	*out = append(*out, fn[*last:start]...)
	*out = appendU32(append(*out, opCall), rw.helper(key))
	*last = end
}

// appendCheck appends a check that takes what charge pushes from the budget
// and, once the budget is spent, calls the host and reads the flag:
//
//	global.get $budget  <charge>  i32.sub  global.set $budget
//	global.get $budget  i32.const 0  i32.lt_s
//	if
//	  i32.const 0  memory.grow 0  drop       ;; leave compiled code: a safe point
//	  i32.const Budget  global.set $budget
//	  global.get $flag  if unreachable end  ;; stop when the host says so
//	end
func (rw *rewriter) appendCheck(b, charge []byte) []byte {
	b = appendU32(append(b, opGlobalGet), rw.budget)
	b = append(b, charge...)
	b = appendU32(append(b, opI32Sub, opGlobalSet), rw.budget)
	b = appendU32(append(b, opGlobalGet), rw.budget)
	b = append(b, opI32Const, 0x00, opI32LtS, opIf, emptyBlock)
	b = append(b, opI32Const, 0x00, opMemoryGrow, 0x00, opDrop)
	b = appendS32(append(b, opI32Const), Budget)
	b = appendU32(append(b, opGlobalSet), rw.budget)
	b = append(appendU32(append(b, opGlobalGet), rw.flag), opIf, emptyBlock, opUnreach, opEnd)
	return append(b, opEnd)
}

// flagCheck is what follows a call that may reach the host: the host call
// was a safe point already, and the flag costs one load to read.
//
//	global.get $flag  if unreachable end
func (rw *rewriter) flagCheck() []byte {
	return append(appendU32([]byte{opGlobalGet}, rw.flag), opIf, emptyBlock, opUnreach, opEnd)
}

// putSlot writes v, at most 2^27-1, as a five-byte signed LEB128.
func putSlot(b []byte, v uint32) {
	for i := 0; i < 4; i++ {
		b[i] = byte(v>>(7*i))&0x7f | 0x80
	}
	b[4] = byte(v>>28) & 0x7f
}

// miscOp is a decoded 0xfc instruction: its sub-opcode and index
// immediates.
type miscOp struct{ sub, a, b uint32 }

// bulk reports whether the instruction takes time in proportion to an
// operand, or grows a table: those are turned into helper calls.
func (m miscOp) bulk() bool {
	switch m.sub {
	case miscMemoryInit, miscMemoryCopy, miscMemoryFill, miscTableInit, miscTableCopy, miscTableGrow, miscTableFill:
		return true
	}
	return false
}

// misc decodes the immediates of a 0xfc instruction.
func (r *reader) misc() (miscOp, error) {
	m := miscOp{sub: r.u32()}
	var mem []byte
	switch m.sub {
	case 0, 1, 2, 3, 4, 5, 6, 7: // saturating truncations
	case miscMemoryInit: // dataidx 0x00
		m.a = r.u32()
		mem = []byte{r.byte()}
	case 9, 13, miscTableGrow, 16, miscTableFill: // data.drop, elem.drop, table.grow/size/fill
		m.a = r.u32()
	case miscMemoryCopy: // 0x00 0x00
		mem = []byte{r.byte(), r.byte()}
	case miscMemoryFill: // 0x00
		mem = []byte{r.byte()}
	case miscTableInit, miscTableCopy: // elemidx tableidx; tableidx tableidx
		m.a = r.u32()
		m.b = r.u32()
	default:
		return m, fmt.Errorf("unsupported opcode 0xfc %d", m.sub)
	}
	if r.err == nil && bytes.Count(mem, []byte{0}) != len(mem) {
		return m, fmt.Errorf("0xfc %d names memory % x; a function has one memory", m.sub, mem)
	}
	return m, r.err
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
