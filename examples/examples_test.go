package examples_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/internal/harness/testbuild"
)

// TestCEcho deploys the committed c-echo/echo.wasm and, when clang with
// wasi-libc is installed, one built afresh by c-echo/build.sh's command.
func TestCEcho(t *testing.T) {
	manifest := readFile(t, "c-echo/vouch.json")
	committed, err := os.ReadFile("c-echo/echo.wasm")
	if err != nil {
		t.Skipf("c-echo/echo.wasm is absent (%v); build it with examples/c-echo/build.sh", err)
	}
	t.Run("committed", func(t *testing.T) { checkEcho(t, committed, manifest) })
	t.Run("rebuilt", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "echo.wasm")
		cmd := exec.Command("clang", "--target=wasm32-wasi", "-O2", "-Wall", "-Wextra", "-Werror", "-Wl,--strip-all", "-o", out, "c-echo/echo.c")
		if msg, err := cmd.CombinedOutput(); err != nil {
			if os.Getenv("VOUCH_REQUIRE_WASI_CLANG") != "" { // set by .ci/run when clang is installed
				t.Fatalf("clang cannot build for wasm32-wasi: %v\n%s", err, msg)
			}
			t.Skipf("clang cannot build for wasm32-wasi here (install clang lld wasi-libc libclang-rt-dev-wasm32): %v\n%s", err, msg)
		}
		checkEcho(t, readFile(t, out), manifest)
	})
}

// TestGoEcho builds go-echo as a reactor and as a command, and deploys
// both.
func TestGoEcho(t *testing.T) {
	manifest := readFile(t, "go-echo/vouch.json")
	for _, reactor := range []bool{true, false} {
		module, err := testbuild.Wasm("./examples/go-echo", reactor)
		if err != nil {
			t.Fatal(err)
		}
		checkEcho(t, module, manifest)
	}
}

// checkEcho deploys an echo function to a real runtime and runs it with
// sealed and plaintext inputs.
func checkEcho(t *testing.T, module, manifest []byte) {
	ctx := context.Background()
	env := enclavetest.Start(t)
	b, err := bundle.New(module, manifest)
	if err != nil {
		t.Fatal(err)
	}
	c := env.Client(client.Options{})
	d, err := c.Deploy(ctx, b, "")
	if err != nil {
		t.Fatal(err)
	}
	if d.FunctionChecksum != b.Checksum() {
		t.Fatalf("deployed checksum %s, computed %s", d.FunctionChecksum, b.Checksum())
	}
	ref := client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: env.Owner}
	plain := env.Client(client.Options{Plaintext: true})
	for _, run := range []*client.Client{c, plain} {
		in := []byte("hello, vouch\n")
		res, err := run.Run(ctx, ref, in)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(res.Output, in) {
			t.Fatalf("output %q, want %q", res.Output, in)
		}
		if err := res.Receipt.Verify(env.Server.ReceiptKey()); err != nil {
			t.Fatal(err)
		}
	}
	// An empty input is refused: sealed callers get the code, plaintext
	// callers the function's words too.
	_, err = c.Run(ctx, ref, nil)
	if ae := refusal(t, err); strings.Contains(ae.Message, "send the bytes") {
		t.Fatalf("sealed refusal carries the function's words: %q", ae.Message)
	}
	_, err = plain.Run(ctx, ref, nil)
	if ae := refusal(t, err); !strings.Contains(ae.Message, "the input is empty; send the bytes to echo") {
		t.Fatalf("plaintext refusal: %q", ae.Message)
	}
}

func refusal(t *testing.T, err error) *api.Error {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Refusal != api.RefusalMissingValue {
		t.Fatalf("error = %v, want a %s refusal", err, api.RefusalMissingValue)
	}
	return ae
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
