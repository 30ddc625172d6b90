package wat

// immediate says what follows an instruction's opcode.
type immediate int

const (
	immNone immediate = iota
	immBlock
	immLabel
	immBrTable
	immFunc
	immCallIndirect
	immLocal
	immGlobal
	immTable // an optional table index, 0 when absent
	immMemarg
	immMemory // memory.size and memory.grow: a zero byte
	immI32
	immI64
	immF32
	immF64
	immRefType
	immMemFill   // memory.fill: a zero byte
	immMemCopy   // memory.copy: two zero bytes
	immMemInit   // a data index, then a zero byte
	immData      // data.drop: a data index
	immTableInit // an element index, then a table index
	immElem      // elem.drop: an element index
	immTableCopy // two table indexes
)

// op is an instruction: its opcode (after the 0xfc prefix when misc),
// what follows it and, for loads and stores, the natural alignment.
type op struct {
	code  byte
	misc  bool
	imm   immediate
	align uint32 // log2 of the natural alignment
}

var ops = map[string]op{
	"unreachable":   {code: 0x00},
	"nop":           {code: 0x01},
	"block":         {code: 0x02, imm: immBlock},
	"loop":          {code: 0x03, imm: immBlock},
	"if":            {code: 0x04, imm: immBlock},
	"br":            {code: 0x0c, imm: immLabel},
	"br_if":         {code: 0x0d, imm: immLabel},
	"br_table":      {code: 0x0e, imm: immBrTable},
	"return":        {code: 0x0f},
	"call":          {code: 0x10, imm: immFunc},
	"call_indirect": {code: 0x11, imm: immCallIndirect},
	"drop":          {code: 0x1a},
	"select":        {code: 0x1b},
	"local.get":     {code: 0x20, imm: immLocal},
	"local.set":     {code: 0x21, imm: immLocal},
	"local.tee":     {code: 0x22, imm: immLocal},
	"global.get":    {code: 0x23, imm: immGlobal},
	"global.set":    {code: 0x24, imm: immGlobal},
	"table.get":     {code: 0x25, imm: immTable},
	"table.set":     {code: 0x26, imm: immTable},
	"memory.size":   {code: 0x3f, imm: immMemory},
	"memory.grow":   {code: 0x40, imm: immMemory},
	"i32.const":     {code: 0x41, imm: immI32},
	"i64.const":     {code: 0x42, imm: immI64},
	"f32.const":     {code: 0x43, imm: immF32},
	"f64.const":     {code: 0x44, imm: immF64},
	"ref.null":      {code: 0xd0, imm: immRefType},
	"ref.is_null":   {code: 0xd1},
	"ref.func":      {code: 0xd2, imm: immFunc},
	"memory.init":   {code: 8, misc: true, imm: immMemInit},
	"data.drop":     {code: 9, misc: true, imm: immData},
	"memory.copy":   {code: 10, misc: true, imm: immMemCopy},
	"memory.fill":   {code: 11, misc: true, imm: immMemFill},
	"table.init":    {code: 12, misc: true, imm: immTableInit},
	"elem.drop":     {code: 13, misc: true, imm: immElem},
	"table.copy":    {code: 14, misc: true, imm: immTableCopy},
	"table.grow":    {code: 15, misc: true, imm: immTable},
	"table.size":    {code: 16, misc: true, imm: immTable},
	"table.fill":    {code: 17, misc: true, imm: immTable},
}

func init() {
	// Loads and stores, 0x28 to 0x3e, with their natural alignment.
	mem := []struct {
		name  string
		align uint32
	}{
		{"i32.load", 2}, {"i64.load", 3}, {"f32.load", 2}, {"f64.load", 3},
		{"i32.load8_s", 0}, {"i32.load8_u", 0}, {"i32.load16_s", 1}, {"i32.load16_u", 1},
		{"i64.load8_s", 0}, {"i64.load8_u", 0}, {"i64.load16_s", 1}, {"i64.load16_u", 1},
		{"i64.load32_s", 2}, {"i64.load32_u", 2},
		{"i32.store", 2}, {"i64.store", 3}, {"f32.store", 2}, {"f64.store", 3},
		{"i32.store8", 0}, {"i32.store16", 1}, {"i64.store8", 0}, {"i64.store16", 1}, {"i64.store32", 2},
	}
	for i, m := range mem {
		ops[m.name] = op{code: 0x28 + byte(i), imm: immMemarg, align: m.align}
	}
	// Numeric instructions without immediates, from 0x45 on, in order.
	cmp := []string{"eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"}
	fcmp := []string{"eq", "ne", "lt", "gt", "le", "ge"}
	iarith := []string{"clz", "ctz", "popcnt", "add", "sub", "mul", "div_s", "div_u", "rem_s", "rem_u", "and", "or", "xor", "shl", "shr_s", "shr_u", "rotl", "rotr"}
	farith := []string{"abs", "neg", "ceil", "floor", "trunc", "nearest", "sqrt", "add", "sub", "mul", "div", "min", "max", "copysign"}
	var names []string
	names = append(names, "i32.eqz")
	names = append(names, prefixed("i32.", cmp)...)
	names = append(names, "i64.eqz")
	names = append(names, prefixed("i64.", cmp)...)
	names = append(names, prefixed("f32.", fcmp)...)
	names = append(names, prefixed("f64.", fcmp)...)
	names = append(names, prefixed("i32.", iarith)...)
	names = append(names, prefixed("i64.", iarith)...)
	names = append(names, prefixed("f32.", farith)...)
	names = append(names, prefixed("f64.", farith)...)
	names = append(names,
		"i32.wrap_i64", "i32.trunc_f32_s", "i32.trunc_f32_u", "i32.trunc_f64_s", "i32.trunc_f64_u",
		"i64.extend_i32_s", "i64.extend_i32_u", "i64.trunc_f32_s", "i64.trunc_f32_u", "i64.trunc_f64_s", "i64.trunc_f64_u",
		"f32.convert_i32_s", "f32.convert_i32_u", "f32.convert_i64_s", "f32.convert_i64_u", "f32.demote_f64",
		"f64.convert_i32_s", "f64.convert_i32_u", "f64.convert_i64_s", "f64.convert_i64_u", "f64.promote_f32",
		"i32.reinterpret_f32", "i64.reinterpret_f64", "f32.reinterpret_i32", "f64.reinterpret_i64",
		"i32.extend8_s", "i32.extend16_s", "i64.extend8_s", "i64.extend16_s", "i64.extend32_s")
	for i, n := range names {
		ops[n] = op{code: 0x45 + byte(i)}
	}
	for i, n := range []string{
		"i32.trunc_sat_f32_s", "i32.trunc_sat_f32_u", "i32.trunc_sat_f64_s", "i32.trunc_sat_f64_u",
		"i64.trunc_sat_f32_s", "i64.trunc_sat_f32_u", "i64.trunc_sat_f64_s", "i64.trunc_sat_f64_u",
	} {
		ops[n] = op{code: byte(i), misc: true}
	}
}

func prefixed(p string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = p + n
	}
	return out
}

// valTypes maps value type names to their encodings.
var valTypes = map[string]byte{
	"i32": 0x7f, "i64": 0x7e, "f32": 0x7d, "f64": 0x7c, "v128": 0x7b,
	"funcref": 0x70, "externref": 0x6f,
}
