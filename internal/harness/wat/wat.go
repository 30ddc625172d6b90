// Package wat assembles the WebAssembly text format into a binary module,
// for tests: enough of it for hand-written modules (types, imports,
// functions with named params, locals and labels, tables, one memory,
// globals, exports, a start function, element and data segments, flat and
// folded instructions, bulk memory and table instructions). It needs no
// installed toolchain. It checks syntax and names, not types: wazero's
// validator judges the result.
package wat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Error is a syntax or name error in the source.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("wat: line %d: %s", e.Line, e.Msg) }

// failure carries an *Error out of the recursive descent; Assemble turns
// it back into a return value.
type failure struct{ err *Error }

func fail(n node, format string, args ...any) {
	panic(failure{&Error{Line: n.line, Msg: fmt.Sprintf(format, args...)}})
}

// Assemble turns the text of one module, "(module …)", into its binary
// encoding.
func Assemble(src string) (wasm []byte, err error) {
	nodes, err := parse(src)
	if err != nil {
		return nil, fmt.Errorf("wat: %w", err)
	}
	if len(nodes) != 1 || nodes[0].head() != "module" {
		return nil, errors.New("wat: the source must be one (module …)")
	}
	defer func() {
		if p := recover(); p != nil {
			f, ok := p.(failure)
			if !ok {
				panic(p)
			}
			wasm, err = nil, f.err
		}
	}()
	m := newModule()
	fields := nodes[0].list[1:]
	if len(fields) > 0 && isName(fields[0]) {
		fields = fields[1:] // the module's own name
	}
	m.declare(fields)
	return m.encode(), nil
}

// MustAssemble is Assemble for sources known to be good; it panics on an
// error.
func MustAssemble(src string) []byte {
	b, err := Assemble(src)
	if err != nil {
		panic(err)
	}
	return b
}

// space is one index space: names to indexes.
type space struct {
	kind  string
	names map[string]uint32
	n     uint32
}

func (s *space) add(n node, name string) uint32 {
	i := s.n
	s.n++
	if name != "" {
		if _, dup := s.names[name]; dup {
			fail(n, "%s %s is defined twice", s.kind, name)
		}
		s.names[name] = i
	}
	return i
}

// index resolves a $name or a number in the space.
func (s *space) index(n node) uint32 {
	if n.isList || n.str {
		fail(n, "expected a %s index, found %s", s.kind, n)
	}
	if strings.HasPrefix(n.atom, "$") {
		i, ok := s.names[n.atom]
		if !ok {
			fail(n, "unknown %s %s", s.kind, n.atom)
		}
		return i
	}
	return u32(n)
}

type funcType struct{ params, results []byte }

func (t funcType) key() string { return string(t.params) + "|" + string(t.results) }

type function struct {
	decl   node
	typ    uint32
	locals []byte            // the types of the locals after the params
	names  map[string]uint32 // params and locals
	body   []node
	code   []byte // the body's instructions, without the final end
}

type module struct {
	types                                []funcType
	typeSpace, funcs, tables, mems       space
	globals, elems, datas                space
	imports, tableSec, memSec, globalSec [][]byte
	exports, elemSec, dataSec            [][]byte
	code                                 []*function
	start                                *uint32
	usesDataCount                        bool
}

func newModule() *module {
	sp := func(kind string) space { return space{kind: kind, names: map[string]uint32{}} }
	return &module{
		typeSpace: sp("type"), funcs: sp("function"), tables: sp("table"), mems: sp("memory"),
		globals: sp("global"), elems: sp("element segment"), datas: sp("data segment"),
	}
}

func isName(n node) bool { return !n.isList && !n.str && strings.HasPrefix(n.atom, "$") }

// optName returns the $name at the start of list (after its head), if any,
// and the rest.
func optName(list []node) (string, []node) {
	if len(list) > 0 && isName(list[0]) {
		return list[0].atom, list[1:]
	}
	return "", list
}

// declare walks the module's fields: first imports, whose indexes come
// before those of definitions, then everything else, then function bodies,
// which may name anything.
func (m *module) declare(fields []node) {
	for _, f := range fields {
		if !f.isList {
			fail(f, "expected a module field, found %s", f)
		}
		switch f.head() {
		case "type":
			name, rest := optName(f.list[1:])
			if len(rest) != 1 || rest[0].head() != "func" {
				fail(f, "a type must be (type $name? (func …))")
			}
			t, more := m.signature(rest[0].list[1:], nil)
			if len(more) > 0 {
				fail(more[0], "unexpected %s in a function type", more[0])
			}
			m.typeSpace.add(f, name)
			m.types = append(m.types, t)
		}
	}
	for _, f := range fields {
		if f.head() == "import" {
			m.importField(f)
		}
		if f.head() == "func" {
			if _, rest := optName(f.list[1:]); len(skipExports(rest)) > 0 && skipExports(rest)[0].head() == "import" {
				m.inlineImport(f)
			}
		}
	}
	for _, f := range fields {
		switch f.head() {
		case "func":
			if _, rest := optName(f.list[1:]); len(skipExports(rest)) > 0 && skipExports(rest)[0].head() == "import" {
				continue
			}
			m.funcField(f)
		case "table":
			m.tableField(f)
		case "memory":
			m.memoryField(f)
		case "global":
			m.globalField(f)
		case "elem":
			name, _ := optName(f.list[1:])
			m.elems.add(f, name)
		case "data":
			name, _ := optName(f.list[1:])
			m.datas.add(f, name)
		case "type", "import", "export", "start":
		default:
			fail(f, "unknown module field %s", f)
		}
	}
	for _, f := range fields {
		switch f.head() {
		case "export":
			if len(f.list) != 3 || !f.list[1].str || !f.list[2].isList || len(f.list[2].list) != 2 {
				fail(f, "an export must be (export \"name\" (func|table|memory|global index))")
			}
			d := f.list[2]
			var kind byte
			var idx uint32
			switch d.head() {
			case "func":
				kind, idx = 0, m.funcs.index(d.list[1])
			case "table":
				kind, idx = 1, m.tables.index(d.list[1])
			case "memory":
				kind, idx = 2, m.mems.index(d.list[1])
			case "global":
				kind, idx = 3, m.globals.index(d.list[1])
			default:
				fail(d, "unknown export kind %s", d)
			}
			m.export(f.list[1].atom, kind, idx)
		case "start":
			if len(f.list) != 2 {
				fail(f, "start must be (start function)")
			}
			i := m.funcs.index(f.list[1])
			m.start = &i
		case "elem":
			m.elemField(f)
		case "data":
			m.dataField(f)
		}
	}
	for _, fn := range m.code {
		fn.code = m.instrs(fn, fn.body)
	}
}

// skipExports drops the inline (export "…") lists at the start of a field.
func skipExports(list []node) []node {
	for len(list) > 0 && list[0].head() == "export" {
		list = list[1:]
	}
	return list
}

// inlineExports adds the inline exports of a field defining index idx.
func (m *module) inlineExports(list []node, kind byte, idx uint32) []node {
	for len(list) > 0 && list[0].head() == "export" {
		e := list[0]
		if len(e.list) != 2 || !e.list[1].str {
			fail(e, "an inline export must be (export \"name\")")
		}
		m.export(e.list[1].atom, kind, idx)
		list = list[1:]
	}
	return list
}

func (m *module) export(name string, kind byte, idx uint32) {
	e := appendName(nil, name)
	m.exports = append(m.exports, appendU32(append(e, kind), idx))
}

// signature reads (param …) and (result …) lists. With names, it records
// parameter names. It returns the type and what follows.
func (m *module) signature(list []node, names map[string]uint32) (funcType, []node) {
	var t funcType
	for len(list) > 0 {
		l := list[0]
		switch l.head() {
		case "param":
			if len(t.results) > 0 {
				fail(l, "a param after a result")
			}
			items := l.list[1:]
			if len(items) == 2 && isName(items[0]) {
				if names == nil {
					fail(l, "parameter names are not allowed here")
				}
				if _, dup := names[items[0].atom]; dup {
					fail(l, "local %s is defined twice", items[0].atom)
				}
				names[items[0].atom] = uint32(len(t.params))
				items = items[1:]
			}
			for _, v := range items {
				t.params = append(t.params, valType(v))
			}
		case "result":
			for _, v := range l.list[1:] {
				t.results = append(t.results, valType(v))
			}
		default:
			return t, list
		}
		list = list[1:]
	}
	return t, list
}

// typeUse reads an optional (type x) followed by (param …) and (result …)
// and returns the type's index, adding the type if it is new.
func (m *module) typeUse(list []node, names map[string]uint32) (uint32, funcType, []node) {
	if len(list) > 0 && list[0].head() == "type" {
		tl := list[0]
		if len(tl.list) != 2 {
			fail(tl, "a type use must be (type index)")
		}
		i := m.typeSpace.index(tl.list[1])
		if i >= uint32(len(m.types)) {
			fail(tl, "type %d does not exist", i)
		}
		t, rest := m.signature(list[1:], names)
		if len(t.params)+len(t.results) == 0 {
			t = m.types[i]
		} else if t.key() != m.types[i].key() {
			fail(tl, "the params and results differ from type %s", tl.list[1])
		}
		return i, t, rest
	}
	t, rest := m.signature(list, names)
	return m.typeIndex(t), t, rest
}

// typeIndex returns the index of a type equal to t, adding one if none is.
func (m *module) typeIndex(t funcType) uint32 {
	for i, u := range m.types {
		if u.key() == t.key() {
			return uint32(i)
		}
	}
	m.types = append(m.types, t)
	m.typeSpace.n++
	return uint32(len(m.types) - 1)
}

func (m *module) importField(f node) {
	if len(f.list) != 4 || !f.list[1].str || !f.list[2].str || !f.list[3].isList {
		fail(f, "an import must be (import \"module\" \"name\" (func|table|memory|global …))")
	}
	m.importDesc(f.list[1].atom, f.list[2].atom, f.list[3])
}

// inlineImport handles (func $f (export "…")* (import "m" "n") typeuse).
func (m *module) inlineImport(f node) {
	name, rest := optName(f.list[1:])
	rest = skipExports(rest)
	im := rest[0]
	if len(im.list) != 3 || !im.list[1].str || !im.list[2].str {
		fail(im, "an inline import must be (import \"module\" \"name\")")
	}
	desc := node{isList: true, line: f.line, list: append([]node{{atom: "func", line: f.line}}, rest[1:]...)}
	if name != "" {
		desc.list = append([]node{desc.list[0], {atom: name, line: f.line}}, desc.list[1:]...)
	}
	idx := m.importDesc(im.list[1].atom, im.list[2].atom, desc)
	_, rest = optName(f.list[1:])
	m.inlineExports(rest, 0, idx)
}

func (m *module) importDesc(mod, name string, d node) uint32 {
	e := appendName(appendName(nil, mod), name)
	dname, rest := optName(d.list[1:])
	var idx uint32
	switch d.head() {
	case "func":
		ti, _, more := m.typeUse(rest, nil)
		if len(more) > 0 {
			fail(more[0], "unexpected %s in an imported function", more[0])
		}
		e = appendU32(append(e, 0x00), ti)
		idx = m.funcs.add(d, dname)
	case "table":
		e = append(e, 0x01)
		e = m.tableType(d, rest, e)
		idx = m.tables.add(d, dname)
	case "memory":
		e = append(e, 0x02)
		e = limits(d, rest, e)
		idx = m.mems.add(d, dname)
	case "global":
		if len(rest) != 1 {
			fail(d, "an imported global must be (global $name? type)")
		}
		e = append(append(e, 0x03), globalType(rest[0])...)
		idx = m.globals.add(d, dname)
	default:
		fail(d, "unknown import kind %s", d)
	}
	m.imports = append(m.imports, e)
	return idx
}

func (m *module) funcField(f node) {
	name, rest := optName(f.list[1:])
	idx := m.funcs.add(f, name)
	rest = m.inlineExports(rest, 0, idx)
	fn := &function{decl: f, names: map[string]uint32{}}
	var t funcType
	fn.typ, t, rest = m.typeUse(rest, fn.names)
	n := uint32(len(t.params))
	for len(rest) > 0 && rest[0].head() == "local" {
		items := rest[0].list[1:]
		if len(items) == 2 && isName(items[0]) {
			if _, dup := fn.names[items[0].atom]; dup {
				fail(rest[0], "local %s is defined twice", items[0].atom)
			}
			fn.names[items[0].atom] = n
			items = items[1:]
		}
		for _, v := range items {
			fn.locals = append(fn.locals, valType(v))
			n++
		}
		rest = rest[1:]
	}
	fn.body = rest
	m.code = append(m.code, fn)
}

func (m *module) tableField(f node) {
	name, rest := optName(f.list[1:])
	idx := m.tables.add(f, name)
	rest = m.inlineExports(rest, 1, idx)
	// (table reftype (elem f…)): a table exactly as large as its elements.
	if len(rest) == 2 && rest[1].head() == "elem" {
		funcs := rest[1].list[1:]
		t := valType(rest[0])
		b := appendU32(appendU32(append([]byte{t}, 0x01), uint32(len(funcs))), uint32(len(funcs)))
		m.tableSec = append(m.tableSec, b)
		seg := appendU32(nil, 0x02)
		seg = appendU32(seg, idx)
		seg = append(seg, 0x41, 0x00, 0x0b, 0x00) // offset i32.const 0; elemkind funcref
		seg = appendU32(seg, uint32(len(funcs)))
		for _, fn := range funcs {
			seg = appendU32(seg, m.funcs.index(fn))
		}
		m.elems.n++
		m.elemSec = append(m.elemSec, seg)
		return
	}
	m.tableSec = append(m.tableSec, m.tableType(f, rest, nil))
}

// tableType encodes "min max? reftype" as reftype then limits.
func (m *module) tableType(f node, rest []node, b []byte) []byte {
	if len(rest) == 0 {
		fail(f, "a table needs limits and a reference type")
	}
	t := valType(rest[len(rest)-1])
	if t != 0x70 && t != 0x6f {
		fail(f, "a table holds funcref or externref")
	}
	return limits(f, rest[:len(rest)-1], append(b, t))
}

func limits(f node, rest []node, b []byte) []byte {
	switch len(rest) {
	case 1:
		return appendU32(append(b, 0x00), u32(rest[0]))
	case 2:
		return appendU32(appendU32(append(b, 0x01), u32(rest[0])), u32(rest[1]))
	}
	fail(f, "limits must be min or min max")
	return nil
}

func (m *module) memoryField(f node) {
	name, rest := optName(f.list[1:])
	idx := m.mems.add(f, name)
	rest = m.inlineExports(rest, 2, idx)
	m.memSec = append(m.memSec, limits(f, rest, nil))
}

func globalType(n node) []byte {
	if n.head() == "mut" {
		if len(n.list) != 2 {
			fail(n, "a mutable global type must be (mut type)")
		}
		return []byte{valType(n.list[1]), 0x01}
	}
	return []byte{valType(n), 0x00}
}

func (m *module) globalField(f node) {
	name, rest := optName(f.list[1:])
	idx := m.globals.add(f, name)
	rest = m.inlineExports(rest, 3, idx)
	if len(rest) < 1 {
		fail(f, "a global needs a type and an initial value")
	}
	b := globalType(rest[0])
	m.globalSec = append(m.globalSec, m.constExpr(f, rest[1:], b))
}

// constExpr encodes an initialiser or offset: instructions, then end.
func (m *module) constExpr(at node, list []node, b []byte) []byte {
	if len(list) == 0 {
		fail(at, "missing a constant expression")
	}
	code := m.instrs(&function{decl: at, names: map[string]uint32{}}, list)
	return append(append(b, code...), 0x0b)
}

// offset reads (offset instr…) or one folded instruction.
func (m *module) offset(at node, list []node) ([]byte, []node) {
	if len(list) == 0 {
		fail(at, "missing an offset")
	}
	if list[0].head() == "offset" {
		return m.constExpr(list[0], list[0].list[1:], nil), list[1:]
	}
	if !list[0].isList {
		fail(list[0], "an offset must be (offset …) or one folded instruction")
	}
	return m.constExpr(list[0], list[:1], nil), list[1:]
}

func (m *module) elemField(f node) {
	_, rest := optName(f.list[1:])
	var seg []byte
	switch {
	case len(rest) > 0 && !rest[0].isList && rest[0].atom == "declare":
		seg = appendU32(nil, 3)
		rest = rest[1:]
	case len(rest) > 0 && (rest[0].atom == "func" && !rest[0].isList):
		seg = appendU32(nil, 1)
	default:
		table := uint32(0)
		explicit := false
		if len(rest) > 0 && rest[0].head() == "table" {
			if len(rest[0].list) != 2 {
				fail(rest[0], "must be (table index)")
			}
			table, explicit = m.tables.index(rest[0].list[1]), true
			rest = rest[1:]
		}
		off, more := m.offset(f, rest)
		rest = more
		if explicit || table != 0 {
			seg = appendU32(appendU32(nil, 2), table)
			seg = append(append(seg, off...), 0x00)
		} else {
			seg = append(appendU32(nil, 0), off...)
			if len(rest) > 0 && !rest[0].isList && rest[0].atom == "func" {
				rest = rest[1:]
			}
			seg = appendU32(seg, uint32(len(rest)))
			for _, fn := range rest {
				seg = appendU32(seg, m.funcs.index(fn))
			}
			m.elemSec = append(m.elemSec, seg)
			return
		}
	}
	if seg[0] != 2 {
		if len(rest) == 0 || rest[0].isList || rest[0].atom != "func" {
			fail(f, "a passive or declared element segment must list func indexes")
		}
		seg = append(seg, 0x00) // elemkind funcref
		rest = rest[1:]
	} else if len(rest) > 0 && !rest[0].isList && rest[0].atom == "func" {
		rest = rest[1:]
	}
	seg = appendU32(seg, uint32(len(rest)))
	for _, fn := range rest {
		seg = appendU32(seg, m.funcs.index(fn))
	}
	m.elemSec = append(m.elemSec, seg)
}

func (m *module) dataField(f node) {
	_, rest := optName(f.list[1:])
	var seg []byte
	switch {
	case len(rest) == 0 || rest[0].str:
		seg = appendU32(nil, 1) // passive
	default:
		mem := uint32(0)
		if rest[0].head() == "memory" {
			if len(rest[0].list) != 2 {
				fail(rest[0], "must be (memory index)")
			}
			mem = m.mems.index(rest[0].list[1])
			rest = rest[1:]
		}
		off, more := m.offset(f, rest)
		rest = more
		if mem == 0 {
			seg = append(appendU32(nil, 0), off...)
		} else {
			seg = append(appendU32(appendU32(nil, 2), mem), off...)
		}
	}
	var data []byte
	for _, s := range rest {
		if !s.str {
			fail(s, "data must be strings, found %s", s)
		}
		data = append(data, s.atom...)
	}
	seg = appendU32(seg, uint32(len(data)))
	m.dataSec = append(m.dataSec, append(seg, data...))
}

func valType(n node) byte {
	if !n.isList && !n.str {
		if t, ok := valTypes[n.atom]; ok {
			return t
		}
	}
	fail(n, "unknown value type %s", n)
	return 0
}

// u32 parses an unsigned 32-bit integer.
func u32(n node) uint32 {
	if n.isList || n.str {
		fail(n, "expected a number, found %s", n)
	}
	v, err := strconv.ParseUint(strings.ReplaceAll(n.atom, "_", ""), 0, 32)
	if err != nil || strings.HasPrefix(n.atom, "0") && len(n.atom) > 1 && !strings.HasPrefix(n.atom, "0x") {
		fail(n, "%s is not an unsigned 32-bit number", n.atom)
	}
	return uint32(v)
}

// integer parses an integer literal of the given bits, signed or not; a
// value outside the signed range wraps as the text format allows.
func integer(n node, bits int) int64 {
	if n.isList || n.str {
		fail(n, "expected a number, found %s", n)
	}
	s := strings.ReplaceAll(n.atom, "_", "")
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	base := 10
	if strings.HasPrefix(s, "0x") {
		base, s = 16, s[2:]
	}
	v, err := strconv.ParseUint(s, base, bits)
	if err != nil || s == "" {
		fail(n, "%s is not an i%d", n.atom, bits)
	}
	if neg {
		if v > 1<<(bits-1) {
			fail(n, "%s is not an i%d", n.atom, bits)
		}
		return -int64(v)
	}
	if bits == 32 {
		return int64(int32(uint32(v)))
	}
	return int64(v)
}

func float(n node, bits int) uint64 {
	if n.isList || n.str {
		fail(n, "expected a number, found %s", n)
	}
	s := strings.ReplaceAll(n.atom, "_", "")
	var f float64
	switch strings.TrimLeft(s, "+-") {
	case "inf":
		f = math.Inf(1)
	case "nan":
		f = math.NaN()
	default:
		var err error
		if f, err = strconv.ParseFloat(strings.TrimLeft(s, "+-"), bits); err != nil {
			fail(n, "%s is not an f%d", n.atom, bits)
		}
	}
	if strings.HasPrefix(s, "-") {
		f = -f
	}
	if bits == 32 {
		return uint64(math.Float32bits(float32(f)))
	}
	return math.Float64bits(f)
}

func appendU32(b []byte, v uint32) []byte { return binary.AppendUvarint(b, uint64(v)) }

func appendS64(b []byte, v int64) []byte {
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
	return append(appendU32(b, uint32(len(s))), s...)
}

func section(out []byte, id byte, items [][]byte) []byte {
	if items == nil {
		return out
	}
	body := appendU32(nil, uint32(len(items)))
	for _, it := range items {
		body = append(body, it...)
	}
	out = append(out, id)
	out = appendU32(out, uint32(len(body)))
	return append(out, body...)
}

func (m *module) encode() []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	var types [][]byte
	for _, t := range m.types {
		b := appendU32([]byte{0x60}, uint32(len(t.params)))
		b = append(b, t.params...)
		b = appendU32(b, uint32(len(t.results)))
		types = append(types, append(b, t.results...))
	}
	out = section(out, 1, types)
	out = section(out, 2, m.imports)
	var funcs [][]byte
	for _, fn := range m.code {
		funcs = append(funcs, appendU32(nil, fn.typ))
	}
	out = section(out, 3, funcs)
	out = section(out, 4, m.tableSec)
	out = section(out, 5, m.memSec)
	out = section(out, 6, m.globalSec)
	out = section(out, 7, m.exports)
	if m.start != nil {
		b := appendU32(nil, *m.start)
		out = appendU32(append(out, 8), uint32(len(b)))
		out = append(out, b...)
	}
	out = section(out, 9, m.elemSec)
	if m.usesDataCount {
		b := appendU32(nil, uint32(len(m.dataSec)))
		out = appendU32(append(out, 12), uint32(len(b)))
		out = append(out, b...)
	}
	var code [][]byte
	for _, fn := range m.code {
		// Locals, run-length encoded.
		var groups [][]byte
		for i := 0; i < len(fn.locals); {
			j := i
			for j < len(fn.locals) && fn.locals[j] == fn.locals[i] {
				j++
			}
			groups = append(groups, append(appendU32(nil, uint32(j-i)), fn.locals[i]))
			i = j
		}
		b := appendU32(nil, uint32(len(groups)))
		for _, g := range groups {
			b = append(b, g...)
		}
		b = append(append(b, fn.code...), 0x0b)
		code = append(code, append(appendU32(nil, uint32(len(b))), b...))
	}
	out = section(out, 10, code)
	return section(out, 11, m.dataSec)
}
