package wat

import (
	"math/bits"
	"strconv"
	"strings"
)

// emitter encodes one function body (or constant expression).
type emitter struct {
	m      *module
	fn     *function
	labels []string // the enclosing blocks' labels, innermost last
	out    []byte
}

// instrs encodes a sequence of flat and folded instructions.
func (m *module) instrs(fn *function, list []node) []byte {
	e := &emitter{m: m, fn: fn}
	e.seq(list)
	if len(e.labels) > 0 {
		fail(fn.decl, "a block is not closed with end")
	}
	return e.out
}

// seq encodes a sequence in which flat instructions may open blocks that a
// later end in the same sequence closes.
func (e *emitter) seq(list []node) {
	depth := len(e.labels)
	for len(list) > 0 {
		n := list[0]
		list = list[1:]
		if n.isList {
			e.folded(n)
			continue
		}
		if n.str {
			fail(n, "unexpected string %s", n)
		}
		switch n.atom {
		case "end", "else":
			if len(e.labels) <= depth {
				fail(n, "%s without a block", n.atom)
			}
			if len(list) > 0 && isName(list[0]) {
				if list[0].atom != e.labels[len(e.labels)-1] {
					fail(list[0], "%s %s does not match the block's label", n.atom, list[0].atom)
				}
				list = list[1:]
			}
			if n.atom == "end" {
				e.labels = e.labels[:len(e.labels)-1]
				e.out = append(e.out, 0x0b)
			} else {
				e.out = append(e.out, 0x05)
			}
			continue
		}
		o, ok := ops[n.atom]
		if !ok {
			fail(n, "unknown instruction %s", n.atom)
		}
		if o.imm == immBlock {
			list = e.block(n, o, list)
			continue
		}
		list = e.op(n, o, list)
	}
	if len(e.labels) > depth {
		fail(list0(list), "a block is not closed with end")
	}
}

func list0(list []node) node {
	if len(list) > 0 {
		return list[0]
	}
	return node{}
}

// block emits a block, loop or if opcode with its label and type and
// pushes its label; it returns what follows the type.
func (e *emitter) block(at node, o op, list []node) []node {
	label := ""
	if len(list) > 0 && isName(list[0]) {
		label, list = list[0].atom, list[1:]
	}
	e.out = append(e.out, o.code)
	list = e.blockType(at, list)
	e.labels = append(e.labels, label)
	return list
}

func (e *emitter) blockType(at node, list []node) []node {
	end := 0
	for end < len(list) && (list[end].head() == "type" || list[end].head() == "param" || list[end].head() == "result") {
		end++
	}
	if end == 0 {
		e.out = append(e.out, 0x40)
		return list
	}
	if end == 1 && list[0].head() == "result" && len(list[0].list) == 2 {
		e.out = append(e.out, valType(list[0].list[1]))
		return list[1:]
	}
	idx, _, rest := e.m.typeUse(list[:end], nil)
	if len(rest) > 0 {
		fail(rest[0], "unexpected %s in a block type", rest[0])
	}
	e.out = appendS64(e.out, int64(idx))
	return list[end:]
}

// folded encodes (op immediates… operands…) and the folded block forms.
func (e *emitter) folded(n node) {
	name := n.head()
	o, ok := ops[name]
	if !ok {
		fail(n, "unknown instruction %s", n)
	}
	rest := n.list[1:]
	switch name {
	case "block", "loop":
		rest = e.block(n, o, rest)
		e.seq(rest)
		e.labels = e.labels[:len(e.labels)-1]
		e.out = append(e.out, 0x0b)
		return
	case "if":
		label := ""
		if len(rest) > 0 && isName(rest[0]) {
			label, rest = rest[0].atom, rest[1:]
		}
		// The type comes first in the text, but the condition is
		// evaluated first: encode the type after the condition.
		end := 0
		for end < len(rest) && (rest[end].head() == "type" || rest[end].head() == "param" || rest[end].head() == "result") {
			end++
		}
		bt, rest := rest[:end], rest[end:]
		for len(rest) > 0 && rest[0].head() != "then" {
			if !rest[0].isList {
				fail(rest[0], "an if's condition must be folded instructions")
			}
			e.folded(rest[0])
			rest = rest[1:]
		}
		if len(rest) == 0 {
			fail(n, "an if needs (then …)")
		}
		e.out = append(e.out, o.code)
		e.blockType(n, bt)
		e.labels = append(e.labels, label)
		e.seq(rest[0].list[1:])
		rest = rest[1:]
		if len(rest) > 0 && rest[0].head() == "else" {
			e.out = append(e.out, 0x05)
			e.seq(rest[0].list[1:])
			rest = rest[1:]
		}
		if len(rest) > 0 {
			fail(rest[0], "unexpected %s after an if's branches", rest[0])
		}
		e.labels = e.labels[:len(e.labels)-1]
		e.out = append(e.out, 0x0b)
		return
	}
	// Immediates are encoded into a separate buffer, since the operands
	// come first.
	saved := e.out
	e.out = nil
	rest = e.op(n.list[0], o, rest)
	instr := e.out
	e.out = saved
	for _, arg := range rest {
		if !arg.isList {
			fail(arg, "unexpected %s among the operands of %s", arg, name)
		}
		e.folded(arg)
	}
	e.out = append(e.out, instr...)
}

// isIndex reports whether n looks like an index: a $name or a number.
func isIndex(n node) bool {
	return !n.isList && !n.str && n.atom != "" && (n.atom[0] == '$' || (n.atom[0] >= '0' && n.atom[0] <= '9'))
}

// op emits a non-block instruction and its immediates, taken from list;
// it returns what follows them.
func (e *emitter) op(at node, o op, list []node) []node {
	if o.misc {
		e.out = appendU32(append(e.out, 0xfc), uint32(o.code))
	} else {
		e.out = append(e.out, o.code)
	}
	need := func() node {
		if len(list) == 0 || list[0].isList || list[0].str {
			fail(at, "%s needs an immediate", at.atom)
		}
		n := list[0]
		list = list[1:]
		return n
	}
	optIndex := func(s *space) uint32 {
		if len(list) > 0 && isIndex(list[0]) {
			return s.index(need())
		}
		return 0
	}
	switch o.imm {
	case immLabel:
		e.out = appendU32(e.out, e.label(need()))
	case immBrTable:
		var ls []uint32
		for len(list) > 0 && isIndex(list[0]) {
			ls = append(ls, e.label(need()))
		}
		if len(ls) == 0 {
			fail(at, "br_table needs at least a default label")
		}
		e.out = appendU32(e.out, uint32(len(ls)-1))
		for _, l := range ls {
			e.out = appendU32(e.out, l)
		}
	case immFunc:
		e.out = appendU32(e.out, e.m.funcs.index(need()))
	case immCallIndirect:
		table := optIndex(&e.m.tables)
		end := 0
		for end < len(list) && (list[end].head() == "type" || list[end].head() == "param" || list[end].head() == "result") {
			end++
		}
		idx, _, rest := e.m.typeUse(list[:end], nil)
		if len(rest) > 0 {
			fail(rest[0], "unexpected %s in call_indirect", rest[0])
		}
		list = list[end:]
		e.out = appendU32(appendU32(e.out, idx), table)
	case immLocal:
		n := need()
		if isName(n) {
			i, ok := e.fn.names[n.atom]
			if !ok {
				fail(n, "unknown local %s", n.atom)
			}
			e.out = appendU32(e.out, i)
		} else {
			e.out = appendU32(e.out, u32(n))
		}
	case immGlobal:
		e.out = appendU32(e.out, e.m.globals.index(need()))
	case immTable:
		e.out = appendU32(e.out, optIndex(&e.m.tables))
	case immMemarg:
		offset, align := uint32(0), o.align
		for len(list) > 0 && !list[0].isList && (strings.HasPrefix(list[0].atom, "offset=") || strings.HasPrefix(list[0].atom, "align=")) {
			n := need()
			k, v, _ := strings.Cut(n.atom, "=")
			x := u32(node{atom: v, line: n.line})
			if k == "offset" {
				offset = x
				continue
			}
			if x == 0 || x&(x-1) != 0 {
				fail(n, "alignment %d is not a power of 2", x)
			}
			align = uint32(bits.TrailingZeros32(x))
		}
		e.out = appendU32(appendU32(e.out, align), offset)
	case immMemory, immMemFill:
		e.out = append(e.out, 0x00)
	case immMemCopy:
		e.out = append(e.out, 0x00, 0x00)
	case immMemInit:
		e.m.usesDataCount = true
		e.out = append(appendU32(e.out, e.m.datas.index(need())), 0x00)
	case immData:
		e.m.usesDataCount = true
		e.out = appendU32(e.out, e.m.datas.index(need()))
	case immTableInit:
		first := need()
		if len(list) > 0 && isIndex(list[0]) {
			second := need()
			e.out = appendU32(appendU32(e.out, e.m.elems.index(second)), e.m.tables.index(first))
		} else {
			e.out = appendU32(appendU32(e.out, e.m.elems.index(first)), 0)
		}
	case immElem:
		e.out = appendU32(e.out, e.m.elems.index(need()))
	case immTableCopy:
		dst, src := optIndex(&e.m.tables), optIndex(&e.m.tables)
		e.out = appendU32(appendU32(e.out, dst), src)
	case immI32:
		e.out = appendS64(e.out, integer(need(), 32))
	case immI64:
		e.out = appendS64(e.out, integer(need(), 64))
	case immF32:
		v := uint32(float(need(), 32))
		e.out = append(e.out, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	case immF64:
		v := float(need(), 64)
		for i := 0; i < 8; i++ {
			e.out = append(e.out, byte(v>>(8*i)))
		}
	case immRefType:
		switch n := need(); n.atom {
		case "func", "funcref":
			e.out = append(e.out, 0x70)
		case "extern", "externref":
			e.out = append(e.out, 0x6f)
		default:
			fail(n, "unknown reference type %s", n.atom)
		}
	}
	if o.code == 0x1b && !o.misc && len(list) > 0 && list[0].head() == "result" {
		// select with a type: 0x1c vec(valtype).
		e.out[len(e.out)-1] = 0x1c
		ts := list[0].list[1:]
		e.out = appendU32(e.out, uint32(len(ts)))
		for _, t := range ts {
			e.out = append(e.out, valType(t))
		}
		list = list[1:]
	}
	return list
}

// label resolves a branch target to its depth.
func (e *emitter) label(n node) uint32 {
	if isName(n) {
		for i := len(e.labels) - 1; i >= 0; i-- {
			if e.labels[i] == n.atom {
				return uint32(len(e.labels) - 1 - i)
			}
		}
		fail(n, "unknown label %s", n.atom)
	}
	d := u32(n)
	if d >= uint32(len(e.labels))+1 { // +1: the function body itself
		fail(n, "label %s is deeper than the %d enclosing blocks", strconv.Quote(n.atom), len(e.labels))
	}
	return d
}
