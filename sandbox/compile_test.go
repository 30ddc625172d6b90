package sandbox

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/bundle"
)

// A module on which wazero 1.12's validator panics (found by
// FuzzInstrument) is refused with an error, and the engine keeps working.
func TestCompilerPanicIsAnError(t *testing.T) {
	mod := []byte("\x00asm\x01\x00\x00\x00\x01\b\x02`\x00\x00`\x01\x7f\x00\x03\x03\x02\x000\x05\x03\x01\x000\a\x13\x02\x06000000\x02\x00\x06000001\x00\x00\n \x02\x06\x00A0\x10\x01\v\x17\x00000\x040000000000000000\v\v")
	_, err := engine.Load(context.Background(), mod, bundle.DefaultLimits)
	if !errors.Is(err, ErrModule) || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("error = %v", err)
	}
	f := load(t, testfnReac, bundle.DefaultLimits)
	if _, err := f.Invoke(context.Background(), []byte("probe"), nil); err != nil {
		t.Fatalf("after the panic: %v", err)
	}
}
