package interrupt

import (
	"errors"
	"fmt"
)

// Bulk operations (memory.fill, memory.copy, memory.init, table.fill,
// table.copy, table.init) take time in proportion to an operand: one
// memory.fill can write 4 GiB. Each is replaced by a call to a helper that
// does the same work in chunks, with a check before each chunk. A helper
// first checks the whole operation's bounds; if it is out of bounds, or
// small, the helper runs the original instruction unchanged, so traps
// happen exactly as before, with nothing written.
//
// memory.grow and table.grow are replaced by helpers too: they record a
// failed grow in the grow-failed global and charge the grown size.

const (
	memChunk         = 64 << 10       // bytes per chunk of a memory operation
	memChunkCharge   = memChunk / 8   // about 1 ns per 8 bytes copied or set
	tableChunk       = 4096           // elements per chunk of a table operation
	tableChunkCharge = tableChunk * 4 // elements cost more than bytes
	growPageCharge   = 4096           // a grown page: 64 KiB zeroed, maybe copied
	growMaxPages     = Budget / growPageCharge
)

// moduleInfo is what the helpers need to know of the module.
type moduleInfo struct {
	types, importedFuncs, definedFuncs uint32
	tables                             [][]byte // each table's reference type, as encoded
	// dataLen and elemLen are each segment's length once the module is
	// instantiated: a passive segment's, and 0 for the others, which are
	// dropped at instantiation.
	dataLen, elemLen []uint32
}

type helperKey struct {
	op   byte
	sub  uint32 // of a 0xfc instruction
	a, b uint32 // its index immediates
}

type helper struct {
	typ  []byte // its function type, as encoded
	body []byte // its code, locals included
}

// helper returns the function index of the helper for key, adding it if
// it is new.
func (rw *rewriter) helper(key helperKey) uint32 {
	if i, ok := rw.helperIndex[key]; ok {
		return i
	}
	var h helper
	if key.op == opMemoryGrow {
		h = rw.growHelper(nil, []byte{opMemoryGrow, 0x00}, memoryGrowCharge)
	} else {
		h = rw.bulkHelper(key)
	}
	i := rw.info.importedFuncs + rw.info.definedFuncs + uint32(len(rw.helpers))
	rw.helpers = append(rw.helpers, h)
	rw.helperIndex[key] = i
	return i
}

const (
	opLoop       = 0x03
	opElse       = 0x05
	opBrIf       = 0x0d
	opReturn     = 0x0f
	opSelect     = 0x1b
	opLocalGet   = 0x20
	opLocalSet   = 0x21
	opLocalTee   = 0x22
	opMemorySize = 0x3f
	opI64Const   = 0x42
	opI32Eq      = 0x46
	opI32LtU     = 0x49
	opI32GtU     = 0x4b
	opI32LeU     = 0x4d
	opI64GtU     = 0x56
	opI32Add     = 0x6a
	opI32Or      = 0x72
	opI32Shl     = 0x74
	opI32ShrU    = 0x76
	opI64Add     = 0x7c
	opI64Shl     = 0x86
	opI64ExtU    = 0xad
	funcref      = 0x70
)

// tableType returns table t's reference type, funcref if there is no such
// table (then the original instruction was invalid, and so is the helper).
func (info *moduleInfo) tableType(t uint32) []byte {
	if int64(t) < int64(len(info.tables)) {
		return info.tables[t]
	}
	return []byte{funcref}
}

func segment(lens []uint32, i uint32) uint32 {
	if int64(i) < int64(len(lens)) {
		return lens[i]
	}
	return 0
}

// Charges of a grow, pushed from its operand in local 0: capped, so that a
// charge stays within the budget.
var (
	// min(n, growMaxPages) * growPageCharge
	memoryGrowCharge = []byte{
		opLocalGet, 0, opI32Const, growMaxPages, opLocalGet, 0, opI32Const, growMaxPages, opI32LtU, opSelect,
		opI32Const, 12, opI32Shl,
	}
	// min(n, Budget) / 2: a table element is 8 bytes.
	tableGrowCharge = append(append(append([]byte{opLocalGet, 1, opI32Const}, leb(Budget, true)...), opLocalGet, 1, opI32Const),
		append(leb(Budget, true), opI32LtU, opSelect, opI32Const, 1, opI32ShrU)...)
)

func leb(v uint32, signed bool) []byte {
	if signed {
		return appendS32(nil, int32(v))
	}
	return appendU32(nil, v)
}

// growHelper returns a helper for memory.grow or table.grow (grow): its
// parameters are the instruction's operands, the last one the size in
// pages or elements; it returns the instruction's result. It sets the
// grow-failed global when the grow fails, and charges the grown size.
func (rw *rewriter) growHelper(ref []byte, grow []byte, charge []byte) helper {
	params := append(append([]byte(nil), ref...), valI32)
	n := byte(len(params))
	typ := append([]byte{0x60}, appendU32(nil, uint32(n))...)
	typ = append(append(typ, params...), 1, valI32)
	b := []byte{1, 1, valI32} // one local: the result
	for i := byte(0); i < n; i++ {
		b = append(b, opLocalGet, i)
	}
	b = append(b, grow...)
	b = append(b, opLocalTee, n, opI32Const, 0x7f, opI32Eq, opIf, emptyBlock, opI32Const, 1)
	b = append(appendU32(append(b, opGlobalSet), rw.failed), opEnd)
	if len(ref) == 0 {
		b = rw.appendCheck(b, charge)
	} else {
		b = rw.appendCheck(b, tableGrowCharge)
	}
	b = append(b, opLocalGet, n, opEnd)
	return helper{typ: typ, body: b}
}

// bulkHelper returns the helper for a bulk instruction: a function with
// the instruction's operands (dst, src or value, n) as parameters.
func (rw *rewriter) bulkHelper(key helperKey) helper {
	var (
		op       = appendU32([]byte{0xfc}, key.sub)
		params   = []byte{valI32, valI32, valI32}
		dstSize  []byte // pushes the destination's size as i64
		srcSize  []byte // pushes the source's size as i64; none for fills
		chunk    uint32
		charge   uint32
		backward bool // overlapping copies may need to go from the end
	)
	memSize := []byte{opMemorySize, 0, opI64ExtU, opI64Const, 16, opI64Shl}
	tableSize := func(t uint32) []byte {
		return append(appendU32([]byte{0xfc, 16}, t), opI64ExtU)
	}
	segSize := func(n uint32) []byte { return append([]byte{opI64Const}, appendS64u(n)...) }
	chunk, charge = memChunk, memChunkCharge
	switch key.sub {
	case miscMemoryInit:
		op = append(appendU32(op, key.a), 0)
		dstSize, srcSize = memSize, segSize(segment(rw.info.dataLen, key.a))
	case miscMemoryCopy:
		op = append(op, 0, 0)
		dstSize, srcSize, backward = memSize, memSize, true
	case miscMemoryFill:
		op = append(op, 0)
		dstSize = memSize
	case miscTableInit:
		op = appendU32(appendU32(op, key.a), key.b)
		dstSize, srcSize = tableSize(key.b), segSize(segment(rw.info.elemLen, key.a))
		chunk, charge = tableChunk, tableChunkCharge
	case miscTableCopy:
		op = appendU32(appendU32(op, key.a), key.b)
		dstSize, srcSize, backward = tableSize(key.a), tableSize(key.b), true
		chunk, charge = tableChunk, tableChunkCharge
	case miscTableFill:
		op = appendU32(op, key.a)
		params = append(append([]byte{valI32}, rw.info.tableType(key.a)...), valI32)
		dstSize = tableSize(key.a)
		chunk, charge = tableChunk, tableChunkCharge
	case miscTableGrow:
		return rw.growHelper(rw.info.tableType(key.a), appendU32([]byte{0xfc, miscTableGrow}, key.a), nil)
	}
	typ := append(append([]byte{0x60, 3}, params...), 0)
	c := leb(chunk, true)
	all := []byte{opLocalGet, 0, opLocalGet, 1, opLocalGet, 2}
	all = append(all, op...)
	b := []byte{0} // no locals beyond the parameters
	// Small: as it is.
	b = append(append(append(b, opLocalGet, 2, opI32Const), c...), opI32LeU, opIf, emptyBlock)
	b = append(append(b, all...), opReturn, opEnd)
	// Out of bounds: as it is, so that it traps with nothing written.
	b = append(b, opLocalGet, 0, opI64ExtU, opLocalGet, 2, opI64ExtU, opI64Add)
	b = append(append(b, dstSize...), opI64GtU)
	if srcSize != nil {
		b = append(b, opLocalGet, 1, opI64ExtU, opLocalGet, 2, opI64ExtU, opI64Add)
		b = append(append(b, srcSize...), opI64GtU, opI32Or)
	}
	b = append(append(append(b, opIf, emptyBlock), all...), opReturn, opEnd)
	chargeConst := append([]byte{opI32Const}, leb(charge, true)...)
	if backward {
		// dst > src: from the end, so that no chunk overwrites source
		// bytes a later chunk reads.
		b = append(b, opLocalGet, 0, opLocalGet, 1, opI32GtU, opIf, emptyBlock, opLoop, emptyBlock)
		b = rw.appendCheck(b, chargeConst)
		b = append(append(append(b, opLocalGet, 2, opI32Const), c...), opI32Sub, opLocalSet, 2)
		b = append(b, opLocalGet, 0, opLocalGet, 2, opI32Add, opLocalGet, 1, opLocalGet, 2, opI32Add)
		b = append(append(append(b, opI32Const), c...), op...)
		b = append(append(append(b, opLocalGet, 2, opI32Const), c...), opI32GtU, opBrIf, 0, opEnd)
		b = append(append(b, all...), opReturn, opEnd)
	}
	b = append(b, opLoop, emptyBlock)
	b = rw.appendCheck(b, chargeConst)
	b = append(append(append(b, opLocalGet, 0, opLocalGet, 1, opI32Const), c...), op...)
	b = append(append(append(b, opLocalGet, 0, opI32Const), c...), opI32Add, opLocalSet, 0)
	if srcSize != nil {
		b = append(append(append(b, opLocalGet, 1, opI32Const), c...), opI32Add, opLocalSet, 1)
	}
	b = append(append(append(b, opLocalGet, 2, opI32Const), c...), opI32Sub, opLocalTee, 2)
	b = append(append(append(b, opI32Const), c...), opI32GtU, opBrIf, 0, opEnd)
	b = append(append(b, all...), opEnd)
	return helper{typ: typ, body: b}
}

// appendS64u is v as a signed LEB128 i64 immediate.
func appendS64u(v uint32) []byte {
	var b []byte
	x := int64(v)
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && c&0x40 == 0) || (x == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// tableTypes returns the reference type of each table of a table section.
func tableTypes(body []byte) ([][]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	var types [][]byte
	for i := uint32(0); i < n && r.err == nil; i++ {
		start := len(body) - len(r.b)
		switch r.byte() {
		case 0x40:
			return nil, fmt.Errorf("table %d has an initializer expression, which functions may not use", i)
		case 0x63, 0x64: // (ref null? heaptype)
			r.sleb(33)
		}
		types = append(types, body[start:len(body)-len(r.b)])
		r.limits()
	}
	return types, r.err
}

// segmentLengths returns the length of each element (elems) or data
// segment once the module is instantiated: active and declarative segments
// are dropped then.
func segmentLengths(body []byte, elems bool) ([]uint32, error) {
	r := &reader{b: body}
	n := r.u32()
	var lens []uint32
	for i := uint32(0); i < n && r.err == nil; i++ {
		flag := r.u32()
		if !elems {
			switch flag {
			case 0:
				r.constExpr()
			case 1:
			case 2:
				r.u32()
				r.constExpr()
			default:
				return nil, fmt.Errorf("data segment %d has flags %d", i, flag)
			}
			size := r.u32()
			r.bytes(int(size))
			if flag != 1 {
				size = 0
			}
			lens = append(lens, size)
			continue
		}
		if flag > 7 {
			return nil, fmt.Errorf("element segment %d has flags %d", i, flag)
		}
		passive := flag&3 == 1
		if flag&3 == 2 {
			r.u32() // table index
		}
		if flag&1 == 0 {
			r.constExpr() // offset
		}
		if flag&3 != 0 {
			if b := r.byte(); b == 0x63 || b == 0x64 { // elemkind or reftype
				r.sleb(33)
			}
		}
		count := r.u32()
		for j := uint32(0); j < count && r.err == nil; j++ {
			if flag&4 != 0 {
				r.constExpr()
			} else {
				r.u32()
			}
		}
		if !passive {
			count = 0
		}
		lens = append(lens, count)
	}
	if r.err == nil && !r.eof() {
		return nil, errors.New("bytes after the last segment")
	}
	return lens, r.err
}

// constExpr skips a constant expression and its end.
func (r *reader) constExpr() {
	for r.err == nil {
		switch op := r.byte(); op {
		case opEnd:
			return
		case 0x41:
			r.sleb(32)
		case 0x42:
			r.sleb(64)
		case 0x43:
			r.bytes(4)
		case 0x44:
			r.bytes(8)
		case 0x23, 0xd2: // global.get, ref.func
			r.u32()
		case 0xd0: // ref.null
			r.sleb(33)
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended constants
		case 0xfd: // v128.const
			if r.u32() != 0x0c {
				r.fail(errors.New("unsupported instruction in a constant expression"))
			}
			r.bytes(16)
		default:
			r.fail(fmt.Errorf("unsupported opcode %#x in a constant expression", op))
		}
	}
}
