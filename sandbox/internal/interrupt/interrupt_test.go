package interrupt

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"vouch/internal/wasmtest"
)

func TestInstrumentedModulesCompile(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for name, mod := range map[string][]byte{
		"loop": wasmtest.Loop(), "recurse": wasmtest.Recurse(), "trap": wasmtest.Trap(),
		"grow": wasmtest.GrowForever(), "exit": wasmtest.Exit(3),
	} {
		out, err := Instrument(mod)
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
		if _, err := Instrument(out); !errors.Is(err, ErrUnsupported) {
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
		if _, err := Instrument(tc.mod); err == nil || !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tc.want) {
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
	if _, err := Instrument(bad); err == nil || !strings.Contains(err.Error(), "out of range") {
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
	f.Fuzz(func(t *testing.T, mod []byte) {
		out, err := Instrument(mod)
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
		if _, err := Instrument(out); err == nil {
			t.Fatal("an instrumented module was instrumented again")
		}
	})
}
