package interrupt

import (
	"context"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// tinyModule is a module with one memory page, the given imported
// functions (all () -> ()), and one exported function "run" of type
// () -> () with body (no locals).
func tinyModule(imports []string, body []byte) []byte {
	sec := func(out []byte, id byte, b []byte) []byte {
		return append(appendU32(append(out, id), uint32(len(b))), b...)
	}
	out := []byte("\x00asm\x01\x00\x00\x00")
	out = sec(out, 1, []byte{1, 0x60, 0, 0})
	if len(imports) > 0 {
		b := appendU32(nil, uint32(len(imports)))
		for _, name := range imports {
			b = append(appendName(appendName(b, "env"), name), 0x00, 0)
		}
		out = sec(out, 2, b)
	}
	out = sec(out, 3, []byte{1, 0})
	out = sec(out, 5, []byte{1, 0x00, 1})
	out = sec(out, 7, appendU32(append(appendName([]byte{1}, "run"), 0x00), uint32(len(imports))))
	fn := append([]byte{0}, body...)
	return sec(out, 10, append(appendU32([]byte{1}, uint32(len(fn))), fn...))
}

// countIterations appends code that adds one to the i32 at address 0.
func countIteration(b []byte) []byte {
	return append(b, 0x41, 0, 0x41, 0, 0x28, 2, 0, 0x41, 1, 0x6a, 0x36, 2, 0)
}

// A check pays for the code it guards: with the flag set, a loop whose body
// is 2000 straight instructions traps after about Budget/2000 iterations,
// not after Budget checks.
func TestChecksPayForTheCodeTheyGuard(t *testing.T) {
	for _, size := range []int{1, 100, 2000, 20000} {
		body := []byte{0x03, 0x40} // loop
		body = countIteration(body)
		for range size / 2 {
			body = append(body, 0x41, 0, 0x1a) // i32.const 0 drop
		}
		body = append(body, 0x0c, 0, 0x0b, 0x0b) // br 0 end end
		ctx := context.Background()
		rt := wazero.NewRuntime(ctx)
		m := instantiateFlagged(t, rt, tinyModule(nil, body))
		_, err := m.ExportedFunction("run").Call(ctx)
		if err == nil || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("size %d: %v", size, err)
		}
		n, _ := m.Memory().ReadUint32Le(0)
		work := int(n) * (size + 8)
		t.Logf("a loop of %d instructions ran %d iterations, about %d instructions, before the flag stopped it", size, n, work)
		if work > 2*Budget+2*maxRegion*16 {
			t.Errorf("a loop of %d instructions ran %d iterations, about %d instructions, before the flag stopped it: more than the budget of %d", size, n, work, Budget)
		}
		rt.Close(ctx)
	}
}

// A call into the host is a safe point already; the flag is read right
// after it, so a guest that loops over host calls stops after the first
// call once the flag is set.
func TestFlagIsReadAfterHostCalls(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	calls := 0
	var flag api.MutableGlobal
	_, err := rt.NewHostModuleBuilder("env").NewFunctionBuilder().WithFunc(func() {
		calls++
		flag.Set(1)
	}).Export("f").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{
		"call": {0x03, 0x40, 0x10, 0, 0x0c, 0, 0x0b, 0x0b},
	} {
		calls = 0
		m := instantiateFlagged(t, rt, tinyModule([]string{"f"}, body))
		flag = m.ExportedGlobal(ExportName).(api.MutableGlobal)
		flag.Set(0)
		_, err := m.ExportedFunction("run").Call(ctx)
		if err == nil || !strings.Contains(err.Error(), "unreachable") || calls != 1 {
			t.Fatalf("%s: %d host calls, then %v; want one, then the trap", name, calls, err)
		}
		m.Close(ctx)
	}
}

// instantiateFlagged instruments mod, instantiates it and sets its flag.
func instantiateFlagged(t *testing.T, rt wazero.Runtime, mod []byte) api.Module {
	t.Helper()
	out, err := Instrument(mod, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := rt.InstantiateModule(context.Background(), mustCompile(t, rt, out), wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	m.ExportedGlobal(ExportName).(api.MutableGlobal).Set(1)
	return m
}
