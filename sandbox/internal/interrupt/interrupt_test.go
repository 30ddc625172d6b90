package interrupt

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
)

func TestInstrumentedModulesCompile(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for name, mod := range map[string][]byte{
		"loop": wasmtest.Loop(), "recurse": wasmtest.Recurse(), "trap": wasmtest.Trap(),
		"grow": wasmtest.GrowForever(), "exit": wasmtest.Exit(3),
	} {
		out, err := Instrument(mod, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c, err := rt.CompileModule(ctx, out)
		if err != nil {
			t.Fatalf("%s: instrumented module does not compile: %v", name, err)
		}
		if _, ok := c.ExportedFunctions()["_start"]; !ok {
			t.Fatalf("%s: lost its _start export", name)
		}
		if got := len(c.ExportedMemories()); got != 1 {
			t.Fatalf("%s: %d exported memories", name, got)
		}
		// Instrumenting twice is refused: the export already exists.
		if _, err := Instrument(out, Options{}); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("%s: second instrumentation: %v", name, err)
		}
	}
}

func TestRefusesWhatItCannotInstrument(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  []byte
		want string
	}{
		{"not wasm", []byte("hello"), "not a WebAssembly"},
		{"empty module, no memory", wasmtest.Empty()[:8], "memories"},
		{"truncated", wasmtest.Loop()[:20], ""},
	} {
		if _, err := Instrument(tc.mod, Options{}); err == nil || !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want ErrUnsupported mentioning %q", tc.name, err, tc.want)
		}
	}
}

// A module that names the global index the flag will get would be invalid
// before rewriting; the rewriter refuses it rather than let it clear its
// own flag.
func TestRefusesCodeThatNamesTheFlag(t *testing.T) {
	mod := wasmtest.Loop()
	// Replace the loop body "br 0" with "i32.const 0 global.set 0": the
	// module has no globals, so index 0 is the flag's.
	bad := []byte(strings.Replace(string(mod), "\x03\x40\x0c\x00\x0b\x0b", "\x41\x00\x24\x00\x0b", 1))
	// Fix the code section sizes: the body lost one byte.
	if len(bad) != len(mod)-1 {
		t.Fatal("test module layout changed")
	}
	bad = fixSizes(t, bad)
	if _, err := Instrument(bad, Options{}); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("error = %v", err)
	}
}

// fixSizes rewrites the sizes of the last section (code) and its single
// body after a one-byte shrink.
func fixSizes(t *testing.T, m []byte) []byte {
	t.Helper()
	// The code section is last: id 10, size, count 1, body size, body.
	i := strings.LastIndex(string(m), "\x0a")
	for ; i > 0; i-- {
		if m[i] == 10 && int(m[i+1]) == len(m)-i-2+1 {
			m[i+1]--
			m[i+3]--
			return m
		}
	}
	t.Fatal("code section not found")
	return nil
}

// FuzzInstrument: Instrument never panics; it never turns a module that
// compiles into one that does not; and whatever it returns that compiles
// is instrumented (it exports the flag, so a second pass is refused). What it
// returns for an invalid module (junk after a section's entries, say) may
// stay invalid: the runtime compiles every module after instrumenting, so
// such a module is refused at deploy.
func FuzzInstrument(f *testing.F) {
	f.Add(wasmtest.Loop())
	f.Add(wasmtest.Recurse())
	f.Add(wasmtest.Exit(1))
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	// A panic in wazero's validator counts as "does not compile": the
	// sandbox turns it into an error (sandbox.compile).
	compiles := func(m []byte) (c wazero.CompiledModule, ok bool) {
		defer func() {
			if recover() != nil {
				c, ok = nil, false
			}
		}()
		c, err := rt.CompileModule(ctx, m)
		return c, err == nil
	}
	f.Add(wasmtest.StartLoop(true))
	f.Add(wasmtest.GrowTableForever())
	f.Add(wasmtest.Table(3, 9))
	f.Add(bulkModule())
	f.Add(wasmtest.BulkLoop(2, false))
	f.Add(wasmtest.BulkLoop(2, true))
	f.Add(tinyModule([]string{"f"}, []byte{0x03, 0x40, 0x10, 0, 0x0c, 0, 0x0b, 0x0b}))
	f.Fuzz(func(t *testing.T, mod []byte) {
		// Bound tables for half the inputs, so that both paths run.
		var opts Options
		if len(mod)%2 == 0 {
			opts.MaxTableElements = 1000
		}
		out, err := Instrument(mod, opts)
		if err != nil {
			return
		}
		c, ok := compiles(out)
		if !ok {
			if c0, ok0 := compiles(mod); ok0 {
				c0.Close(ctx)
				t.Fatal("instrumenting a module that compiles made one that does not")
			}
			return
		}
		defer c.Close(ctx)
		if _, err := Instrument(out, opts); err == nil {
			t.Fatal("an instrumented module was instrumented again")
		}
	})
}

// instantiate compiles and instantiates an instrumented module with WASI.
func instantiate(t *testing.T, mod []byte) (api.Module, func()) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithMemoryLimitPages(64))
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	m, err := rt.InstantiateModule(ctx, mustCompile(t, rt, mod), wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		rt.Close(ctx)
		t.Fatal(err)
	}
	return m, func() { rt.Close(ctx) }
}

func mustCompile(t *testing.T, rt wazero.Runtime, mod []byte) wazero.CompiledModule {
	t.Helper()
	c, err := rt.CompileModule(context.Background(), mod)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The start section is gone (instantiating no longer runs the endless
// loop) and the start function is exported for the host to call.
func TestStartSectionBecomesAnExport(t *testing.T) {
	for _, reactor := range []bool{false, true} {
		out, err := Instrument(wasmtest.StartLoop(reactor), Options{})
		if err != nil {
			t.Fatal(err)
		}
		m, done := instantiate(t, out) // would never return with the section
		if m.ExportedFunction(StartExport) == nil {
			t.Fatalf("reactor=%v: no %s export", reactor, StartExport)
		}
		done()
	}
	// A module without a start section exports none.
	out, err := Instrument(wasmtest.Loop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, done := instantiate(t, out)
	defer done()
	if m.ExportedFunction(StartExport) != nil {
		t.Fatalf("%s exported for a module without a start section", StartExport)
	}
}

func TestReservedExportNamesAreRefused(t *testing.T) {
	mod := wasmtest.Loop()
	bad := []byte(strings.Replace(string(mod), "\x06_start", "\x06vouch:", 1))
	if _, err := Instrument(bad, Options{}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("error = %v", err)
	}
}

// A failed memory.grow or table.grow sets the exported flag; a
// successful one does not.
func TestFailedGrowsAreRecorded(t *testing.T) {
	for name, mod := range map[string][]byte{"memory": wasmtest.GrowForever(), "table": wasmtest.GrowTableForever()} {
		out, err := Instrument(mod, Options{MaxTableElements: 1 << 18})
		if err != nil {
			t.Fatal(err)
		}
		m, done := instantiate(t, out)
		g := m.ExportedGlobal(GrowFailedExport)
		if g == nil || g.Get() != 0 {
			t.Fatalf("%s: flag %v before running", name, g)
		}
		if _, err := m.ExportedFunction("_start").Call(context.Background()); err == nil || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("%s: _start = %v, want the trap after the failed grow", name, err)
		}
		if g.Get() != 1 {
			t.Fatalf("%s: the failed grow was not recorded", name)
		}
		done()
	}
	out, err := Instrument(wasmtest.Loop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, done := instantiate(t, out)
	defer done()
	if g := m.ExportedGlobal(GrowFailedExport); g == nil || g.Get() != 0 {
		t.Fatal("a module that grows nothing has the flag set")
	}
}

func TestTablesAreBounded(t *testing.T) {
	// Two tables: 10 without a maximum, and 5 with a maximum of 7. With a
	// bound of 100, the first takes the 85 elements of room left.
	body := []byte{2, 0x70, 0x00, 10, 0x70, 0x01, 5, 7}
	got, err := boundTables(body, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{2, 0x70, 0x01, 10, 95, 0x70, 0x01, 5, 5}; !bytes.Equal(got, want) {
		t.Fatalf("tables = % x, want % x", got, want)
	}
	// Room for both maxima: the declared one is kept.
	got, _ = boundTables([]byte{1, 0x70, 0x01, 5, 7}, 100)
	if want := []byte{1, 0x70, 0x01, 5, 7}; !bytes.Equal(got, want) {
		t.Fatalf("tables = % x, want % x", got, want)
	}
	// A bound beyond what a table can hold leaves the 32-bit maximum.
	got, _ = boundTables([]byte{1, 0x70, 0x00, 5}, 1<<40)
	if want := []byte{1, 0x70, 0x01, 5, 0xff, 0xff, 0xff, 0xff, 0x0f}; !bytes.Equal(got, want) {
		t.Fatalf("tables = % x, want % x", got, want)
	}
	var te *TableLimitError
	if _, err := Instrument(wasmtest.Table(1000, 0), Options{MaxTableElements: 999}); !errors.As(err, &te) || te.Min != 1000 || te.Max != 999 {
		t.Fatalf("minimum over the bound: %v", err)
	}
	for _, bad := range [][]byte{
		{1, 0x70, 0x01, 9, 3},    // max < min
		{1, 0x70, 0x03, 1, 2},    // shared
		{1, 0x40, 0x00, 0x70, 0}, // initializer expression
		{2, 0x70, 0x00, 1},       // truncated
	} {
		if _, err := boundTables(bad, 100); !errors.Is(err, ErrUnsupported) {
			t.Errorf("% x: error = %v", bad, err)
		}
	}
	// Without a bound the table keeps its declared limits.
	out, err := Instrument(wasmtest.Table(1000, 0), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte{4, 5, 1, 0x70, 0x00, 0xe8, 0x07}) {
		t.Fatal("the table section changed without a bound")
	}
}
