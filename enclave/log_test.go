package enclave_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
)

// A function's stderr comes back as the run's log, but only when the input
// was plaintext: for a sealed input it may hold the input, and the answer
// travels in the clear.
func TestRunLogOnlyForPlaintextInputs(t *testing.T) {
	env := enclavetest.Start(t)
	owner := env.Client(client.Options{})
	deploy := func(code byte) client.FunctionRef {
		b, err := bundle.New(wasmtest.LogInput(code), []byte(`{"allow_plaintext_input":true}`))
		if err != nil {
			t.Fatal(err)
		}
		d, err := owner.Deploy(ctx, b, "")
		if err != nil {
			t.Fatal(err)
		}
		return client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: env.Owner}
	}
	const secret = "the secret input"
	plain := env.Client(client.Options{Plaintext: true})
	sealed := env.Client(client.Options{})
	sealedReply := env.Client(client.Options{SealOutput: true})

	ok := deploy(0)
	res, err := plain.Run(ctx, ok, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if res.Log != secret || string(res.Output) != secret {
		t.Fatalf("plaintext run: log %q, output %q", res.Log, res.Output)
	}
	for name, c := range map[string]*client.Client{"sealed": sealed, "sealed with sealed output": sealedReply} {
		res, err := c.Run(ctx, ok, []byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		if res.Log != "" {
			t.Fatalf("%s run returned the log %q", name, res.Log)
		}
	}

	failing := deploy(1)
	_, err = plain.Run(ctx, failing, []byte(secret))
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Kind != "exit" || ae.Log != secret || !strings.Contains(ae.Message, secret) {
		t.Fatalf("plaintext failure: %#v", err)
	}
	for name, c := range map[string]*client.Client{"sealed": sealed, "sealed with sealed output": sealedReply} {
		_, err = c.Run(ctx, failing, []byte(secret))
		if !errors.As(err, &ae) || ae.Code != api.CodeFunctionFailed || ae.Kind != "exit" {
			t.Fatalf("%s failure: %#v", name, err)
		}
		if ae.Log != "" || strings.Contains(ae.Message, secret) || strings.Contains(ae.Hint, secret) || strings.Contains(ae.Message, "code 1") {
			t.Fatalf("%s failure gives away what the function wrote: %#v", name, ae)
		}
	}
}

// After a restart the runtime compiles its functions in the background,
// from the on-disk compilation cache under its data directory, before
// anyone runs them.
func TestRestartLoadsFromTheCompilationCache(t *testing.T) {
	env := enclavetest.Start(t, enclavetest.WithCacheDir(""))
	cacheDir := filepath.Join(env.Dir, "compilation-cache")
	// A small module: compiling the leader takes tens of seconds under the
	// race detector on a loaded machine.
	b, err := bundle.New(wasmtest.LogInput(0), []byte(`{"allow_plaintext_input":true}`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := env.Client(client.Options{}).Deploy(ctx, b, "")
	if err != nil {
		t.Fatal(err)
	}
	ref := client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: env.Owner}
	deployed := cacheFiles(t, cacheDir)
	if len(deployed) == 0 {
		t.Fatalf("deploying compiled nothing into %s", cacheDir)
	}

	// An empty cache: the restarted runtime compiles the leader without
	// being asked to, and writes it to the cache in its data directory.
	env.Stop()
	if err := os.RemoveAll(cacheDir); err != nil {
		t.Fatal(err)
	}
	env = env.Restart()
	waitLoaded(t, env, ref.ID)
	compiled := cacheFiles(t, cacheDir)
	if len(compiled) == 0 {
		t.Fatal("the restarted runtime did not compile into its data directory's cache")
	}

	// A full cache: the next restart reuses it. A compile would write its
	// entry again (wazero writes a new file and renames it over the old).
	env = env.Restart()
	waitLoaded(t, env, ref.ID)
	if reused := cacheFiles(t, cacheDir); !equalFiles(reused, compiled) {
		t.Fatalf("the restart compiled again instead of reusing the cache:\nbefore %v\nafter  %v", compiled, reused)
	}
	if res, err := env.Client(client.Options{}).Run(ctx, ref, []byte("after restarts")); err != nil || string(res.Output) != "after restarts" {
		t.Fatalf("run after restarts: %v", err)
	}
}

// waitLoaded polls GET until the function's mode appears, which happens
// only once it is compiled. Nothing runs it meanwhile.
func waitLoaded(t *testing.T, env *enclavetest.Env, id string) {
	t.Helper()
	c := env.Client(client.Options{})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		fn, err := c.Function(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if fn.Mode != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the function was not loaded in the background after a restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type fileStamp struct {
	size    int64
	modTime time.Time
}

func cacheFiles(t *testing.T, dir string) map[string]fileStamp {
	t.Helper()
	files := map[string]fileStamp{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files[path] = fileStamp{fi.Size(), fi.ModTime()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func equalFiles(a, b map[string]fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w.size != v.size || !w.modTime.Equal(v.modTime) {
			return false
		}
	}
	return true
}
