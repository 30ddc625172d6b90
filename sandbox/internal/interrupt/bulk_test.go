package interrupt

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Sizes of bulkModule: its memory and table start at these sizes, and its
// passive segments hold these many bytes and elements. Each spans several
// chunks, and none is a multiple of a chunk.
const (
	bmPages    = 4
	bmMaxPages = 16
	bmData     = 600001
	bmTable    = 9000
	bmMaxTable = 20000
	bmElems    = 18001
)

// bulkModule exports one function per bulk instruction, each passing its
// parameters straight to the instruction, and what a test needs to
// compare two instances: tget(i) is -1 for a null table element, else the
// function's number (100, 101 or 102).
func bulkModule() []byte {
	u := func(b []byte, v uint32) []byte { return appendU32(b, v) }
	sec := func(out []byte, id byte, body []byte) []byte {
		return append(u(append(out, id), uint32(len(body))), body...)
	}
	three := []byte{0x20, 0, 0x20, 1, 0x20, 2}
	type fn struct {
		name string
		typ  byte
		body []byte
	}
	fns := []fn{
		{"fill", 0, append(three, 0xfc, 11, 0)},
		{"copy", 0, append(three, 0xfc, 10, 0, 0)},
		{"init", 0, append(three, 0xfc, 8, 0, 0)},
		{"ddrop", 1, []byte{0xfc, 9, 0}},
		{"tinit", 0, append(three, 0xfc, 12, 0, 0)},
		{"tcopy", 0, append(three, 0xfc, 14, 0, 0)},
		{"tfill", 0, []byte{0x20, 0, 0xd2, 9, 0x20, 2, 0xfc, 17, 0}}, // fills with k1
		{"edrop", 1, []byte{0xfc, 13, 0}},
		{"", 2, []byte{0x41, 0xe4, 0x00}}, // k0: 100
		{"", 2, []byte{0x41, 0xe5, 0x00}}, // k1: 101
		{"", 2, []byte{0x41, 0xe6, 0x00}}, // k2: 102
		{"tget", 2, []byte{0x20, 0, 0x25, 0, 0xd1, 0x04, 0x7f, 0x41, 0x7f, 0x05, 0x41, 0, 0x20, 0, 0x11, 2, 0, 0x0b}},
		{"grow", 2, []byte{0x20, 0, 0x40, 0}},
		{"tgrow", 2, []byte{0xd0, 0x70, 0x20, 0, 0xfc, 15, 0}},
	}
	out := []byte("\x00asm\x01\x00\x00\x00")
	out = sec(out, 1, []byte{3, 0x60, 3, 0x7f, 0x7f, 0x7f, 0, 0x60, 0, 0, 0x60, 1, 0x7f, 1, 0x7f})
	funcs := u(nil, uint32(len(fns)))
	for _, f := range fns {
		funcs = append(funcs, f.typ)
	}
	out = sec(out, 3, funcs)
	out = sec(out, 4, u(u([]byte{1, 0x70, 0x01}, bmTable), bmMaxTable))
	out = sec(out, 5, []byte{1, 0x01, bmPages, bmMaxPages})
	exports := []byte{}
	n := 0
	for i, f := range fns {
		if f.name != "" {
			exports = u(append(appendName(exports, f.name), 0), uint32(i))
			n++
		}
	}
	out = sec(out, 7, append(u(nil, uint32(n+1)), append(appendName(exports, "memory"), 2, 0)...))
	elems := u([]byte{1, 1, 0x00}, bmElems) // one passive funcref segment
	for i := range bmElems {
		elems = append(elems, byte(8+i%3))
	}
	out = sec(out, 9, elems)
	out = sec(out, 12, []byte{1})
	code := u(nil, uint32(len(fns)))
	for _, f := range fns {
		body := append([]byte{0}, f.body...)
		body = append(body, 0x0b)
		code = append(u(code, uint32(len(body))), body...)
	}
	out = sec(out, 10, code)
	data := u([]byte{1, 1}, bmData)
	for i := range bmData {
		data = append(data, byte(i*7+3))
	}
	return sec(out, 11, data)
}

type bulkStep struct {
	fn   string
	args []uint64
}

func (s bulkStep) String() string { return fmt.Sprint(s.fn, s.args) }

func steps() []bulkStep {
	const M, T, D, E = bmPages << 16, bmTable, bmData, bmElems
	s := func(fn string, args ...uint64) bulkStep { return bulkStep{fn, args} }
	return []bulkStep{
		// memory.fill
		s("fill", 0, 1, 0), s("fill", M, 1, 0), s("fill", M+1, 1, 0), s("fill", 0, 9, M),
		s("fill", 1, 9, M), s("fill", M-70000, 5, 70000), s("fill", 100, 6, 200000),
		s("fill", 0xffffffff, 1, 2), s("fill", M-65536, 3, 65536), s("fill", 0, 2, 65537),
		s("fill", 0xffff0000, 1, 0x20000),
		// memory.init, before and after data.drop
		s("init", 0, 0, M), s("init", 0, D-M, M), s("init", 0, D-M+1, M), s("init", 10, 5, M-10), s("init", M-70000, 0, 70001),
		s("init", M-70000, 0, 70000), s("init", 0, D, 0), s("init", 0, D+1, 0), s("init", 7, 0xffffffff, 70000),
		// memory.copy, overlapping both ways
		s("copy", 1000, 1005, 200000), s("copy", 1005, 1000, 200000), s("copy", 0, M-100000, 100001),
		s("copy", M-100000, 0, 100001), s("copy", 0, 0, M), s("copy", M, M, 0), s("copy", M+1, 0, 0),
		s("copy", 5, 0, M-5), s("copy", 0, 5, M-5), s("copy", 3, 1, 2*65536+7), s("copy", 1, 3, 2*65536+7),
		s("init", 0, 100, M),
		s("copy", 65536, 0, 65537), s("copy", 0, 65536, 65537), s("copy", 0xffffff00, 0, 70000),
		s("ddrop"), s("init", 0, 0, 0), s("init", 0, 0, 1), s("init", 0, 0, 70000), s("init", 0, 1, 0),
		s("ddrop"),
		// table.init, table.copy, table.fill, before and after elem.drop
		s("tinit", 0, 0, T), s("tinit", 0, 1, T), s("tinit", 0, E-T, T), s("tinit", 0, E-T+1, T), s("tinit", 1, 0, T), s("tinit", 0, 0, E),
		s("tinit", 100, 50, 5000), s("tinit", T, E, 0), s("tinit", T+1, 0, 0),
		s("tcopy", 10, 0, T-10), s("tcopy", 0, 10, T-10), s("tcopy", 0, 1, T), s("tcopy", T, T, 0),
		s("tcopy", T+1, 0, 0), s("tcopy", 1, 0, T-1), s("tcopy", 4097, 0, 4097), s("tcopy", 0, 4097, 4097),
		s("tfill", 0, 0, 0), s("tfill", 100, 0, 5000), s("tfill", 1, 0, T), s("tfill", T, 0, 0),
		s("tinit", 0, 0, T),
		s("edrop"), s("tinit", 0, 0, 0), s("tinit", 0, 0, 1), s("tinit", 0, 0, 5000), s("tinit", 0, 1, 0),
		s("tfill", 0, 0, T),
		// grows, and the bulk instructions over what they added
		s("grow", 1), s("grow", 0), s("grow", 100), s("grow", 11), s("grow", 0xffffffff),
		s("fill", 0, 4, bmMaxPages<<16), s("copy", 1, 0, bmMaxPages<<16-1), s("fill", 1, 4, bmMaxPages<<16),
		s("tgrow", 100), s("tgrow", 0), s("tgrow", 1<<20), s("tgrow", bmMaxTable-T-100),
		s("tcopy", 1, 0, bmMaxTable-1), s("tfill", 0, 0, bmMaxTable), s("tcopy", 0, 1, bmMaxTable),
	}
}

// The helpers behave exactly as the instructions they replace: the same
// results and traps, and the same memory and table afterwards, step by
// step, on edge cases of every bulk instruction.
func TestBulkHelpersMatchTheInstructions(t *testing.T) {
	ctx := context.Background()
	mod := bulkModule()
	out, err := Instrument(mod, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []struct {
		name string
		cfg  wazero.RuntimeConfig
	}{{"compiler", wazero.NewRuntimeConfig()}, {"interpreter", wazero.NewRuntimeConfigInterpreter()}} {
		t.Run(cfg.name, func(t *testing.T) {
			rt := wazero.NewRuntimeWithConfig(ctx, cfg.cfg)
			defer rt.Close(ctx)
			var inst [2]api.Module
			for i, code := range [][]byte{mod, out} {
				m, err := rt.InstantiateModule(ctx, mustCompile(t, rt, code), wazero.NewModuleConfig().WithName(fmt.Sprint(i)))
				if err != nil {
					t.Fatal(err)
				}
				inst[i] = m
			}
			for _, st := range steps() {
				var res [2][]uint64
				var errs [2]string
				for i, m := range inst {
					r, err := m.ExportedFunction(st.fn).Call(ctx, st.args...)
					res[i] = r
					if err != nil {
						errs[i], _, _ = strings.Cut(err.Error(), "\n")
					}
				}
				if errs[0] != errs[1] || fmt.Sprint(res[0]) != fmt.Sprint(res[1]) {
					t.Fatalf("%v: instruction %v %q, helper %v %q", st, res[0], errs[0], res[1], errs[1])
				}
				m0, m1 := inst[0].Memory(), inst[1].Memory()
				b0, _ := m0.Read(0, m0.Size())
				b1, _ := m1.Read(0, m1.Size())
				if !bytes.Equal(b0, b1) {
					t.Fatalf("%v (%q): memories differ", st, errs[0])
				}
				if t0, t1 := table(t, inst[0]), table(t, inst[1]); t0 != t1 {
					t.Fatalf("%v (%q): tables differ", st, errs[0])
				}
			}
		})
	}
}

// table returns a module's table, one letter per element.
func table(t *testing.T, m api.Module) string {
	t.Helper()
	get := m.ExportedFunction("tget")
	var b strings.Builder
	for i := uint64(0); ; i++ {
		r, err := get.Call(context.Background(), i)
		if err != nil {
			return b.String() // past the end
		}
		b.WriteByte(byte(int32(r[0]) + 'a' - 100 + 1))
	}
}

// The helpers check between chunks: with the flag set, an operation that
// spans more than a budget's worth of chunks traps, and with it clear the
// same operation completes.
func TestBulkHelpersAreInterruptible(t *testing.T) {
	ctx := context.Background()
	out, err := Instrument(bulkModule(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	compiled := mustCompile(t, rt, out)
	const M = bmMaxPages << 16
	for _, st := range []bulkStep{
		{"fill", []uint64{0, 1, M}}, {"copy", []uint64{1, 0, M - 1}}, {"copy", []uint64{0, 1, M - 1}},
		{"init", []uint64{0, 0, bmData}}, {"tfill", []uint64{0, 0, bmMaxTable}},
		{"tcopy", []uint64{1, 0, bmMaxTable - 1}}, {"tcopy", []uint64{0, 1, bmMaxTable - 1}},
		{"tinit", []uint64{0, 0, bmElems}},
	} {
		for _, flag := range []uint64{0, 1} {
			m, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName(""))
			if err != nil {
				t.Fatal(err)
			}
			for name, arg := range map[string]uint64{"grow": bmMaxPages - bmPages, "tgrow": bmMaxTable - bmTable} {
				if r, err := m.ExportedFunction(name).Call(ctx, arg); err != nil || int32(r[0]) < 0 {
					t.Fatalf("%s(%d) = %v, %v", name, arg, r, err)
				}
			}
			m.ExportedGlobal(ExportName).(api.MutableGlobal).Set(flag)
			_, err = m.ExportedFunction(st.fn).Call(ctx, st.args...)
			if stopped := err != nil && strings.Contains(err.Error(), "unreachable"); stopped != (flag == 1) || (flag == 0 && err != nil) {
				t.Errorf("%v with the flag at %d: %v", st, flag, err)
			}
			m.Close(ctx)
		}
	}
}
