package bundle_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/internal/canon"
	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
)

var (
	module   = wasmtest.Exit(0)
	module2  = wasmtest.Trap()
	manifest = []byte("{\"name\":\"exit\",\"limits\":{\"timeout\":\"1s\"}}\n")
)

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func load(t *testing.T, path string) *bundle.Bundle {
	t.Helper()
	b, err := bundle.Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return b
}

func mustNew(t testing.TB, mod, man []byte) *bundle.Bundle {
	t.Helper()
	b, err := bundle.New(mod, man)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// encoding builds a canonical bundle encoding by hand: the tag, a count
// and (name, content) pairs in the order given.
func encoding(tag string, n uint64, files ...string) []byte {
	c := canon.New(tag).Uint64(n)
	for i := 0; i+1 < len(files); i += 2 {
		c.String(files[i]).Bytes([]byte(files[i+1]))
	}
	return c.Message()
}

func TestChecksumIsSHA256OfEncoding(t *testing.T) {
	for _, man := range [][]byte{nil, manifest} {
		b := mustNew(t, module, man)
		enc := b.Encode()
		sum := sha256.Sum256(enc)
		if b.Checksum() != hex.EncodeToString(sum[:]) || bundle.ChecksumOf(enc) != b.Checksum() {
			t.Fatalf("checksum %s is not the SHA-256 of the encoding", b.Checksum())
		}
		// The documented layout, byte by byte.
		var want []byte
		lp := func(p []byte) { want = append(binary.BigEndian.AppendUint32(want, uint32(len(p))), p...) }
		lp([]byte(bundle.Tag))
		n := uint64(1)
		if man != nil {
			n = 2
		}
		want = binary.BigEndian.AppendUint64(want, n)
		lp([]byte(bundle.ModuleFile))
		lp(module)
		if man != nil {
			lp([]byte(bundle.ManifestFile))
			lp(man)
		}
		if !bytes.Equal(enc, want) {
			t.Fatalf("encoding\n%x\nwant\n%x", enc, want)
		}
		if len(b.Checksum()) != 64 || strings.ToLower(b.Checksum()) != b.Checksum() {
			t.Fatalf("checksum %q is not lowercase hex", b.Checksum())
		}
	}
}

// TestChecksumIgnoresNamesAndTimes: the checksum depends on the bytes a user
// built, not on file or folder names, locations or modification times.
func TestChecksumIgnoresNamesAndTimes(t *testing.T) {
	root := t.TempDir()
	single := filepath.Join(root, "build", "out.wasm")
	write(t, single, module)
	folder := filepath.Join(root, "fn")
	write(t, filepath.Join(folder, "main.wasm"), module)

	want := mustNew(t, module, nil).Checksum()
	if got := load(t, single).Checksum(); got != want {
		t.Fatalf("single file: %s, want %s", got, want)
	}
	if got := load(t, folder).Checksum(); got != want {
		t.Fatalf("folder holding the module under another name: %s, want %s", got, want)
	}

	// With a manifest.
	write(t, filepath.Join(folder, bundle.ManifestFile), manifest)
	withManifest := load(t, folder)
	if withManifest.Checksum() == want {
		t.Fatal("adding vouch.json did not change the checksum")
	}
	if withManifest.Name() != "exit" || !bytes.Equal(withManifest.ManifestJSON, manifest) || time.Duration(withManifest.Manifest.Limits.Timeout) != time.Second {
		t.Fatalf("manifest not loaded: %+v", withManifest)
	}
	want = withManifest.Checksum()
	if got := mustNew(t, module, manifest).Checksum(); got != want {
		t.Fatalf("New: %s, Load: %s", got, want)
	}

	// Copied elsewhere, under other names, with other times.
	elsewhere := filepath.Join(t.TempDir(), "deeper", "another-name")
	write(t, filepath.Join(elsewhere, "x.wasm"), module)
	write(t, filepath.Join(elsewhere, bundle.ManifestFile), manifest)
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, p := range []string{filepath.Join(elsewhere, "x.wasm"), filepath.Join(elsewhere, bundle.ManifestFile), elsewhere} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if got := load(t, elsewhere).Checksum(); got != want {
		t.Fatalf("copied folder: %s, want %s", got, want)
	}
	// Touched (new mtimes), and read through a relative path.
	now := time.Now()
	if err := os.Chtimes(filepath.Join(folder, "main.wasm"), now, now); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	if got := load(t, "fn").Checksum(); got != want {
		t.Fatalf("touched folder: %s, want %s", got, want)
	}
	// File modes do not matter either.
	if err := os.Chmod(filepath.Join(folder, "main.wasm"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := load(t, "fn/").Checksum(); got != want {
		t.Fatalf("after chmod: %s, want %s", got, want)
	}

	// Any change to the manifest's bytes changes the checksum, even one
	// that means the same.
	seen := map[string]string{want: "original"}
	for name, m := range map[string]string{
		"final newline removed": strings.TrimSuffix(string(manifest), "\n"),
		"space added":           strings.Replace(string(manifest), `"name":`, `"name": `, 1),
		"fields reordered":      `{"limits":{"timeout":"1s"},"name":"exit"}` + "\n",
		"same duration spelled": strings.Replace(string(manifest), `"1s"`, `"1000ms"`, 1),
		"name changed":          strings.Replace(string(manifest), `"exit"`, `"exit2"`, 1),
		"empty object":          `{}`,
	} {
		write(t, filepath.Join(folder, bundle.ManifestFile), []byte(m))
		sum := load(t, folder).Checksum()
		if prev, dup := seen[sum]; dup {
			t.Errorf("manifest %s: same checksum as %s", name, prev)
		}
		seen[sum] = name
	}
	// As does the module.
	write(t, filepath.Join(folder, "main.wasm"), module2)
	if _, dup := seen[load(t, folder).Checksum()]; dup {
		t.Error("another module, same checksum")
	}
}

func TestLoadRefuses(t *testing.T) {
	root := t.TempDir()
	mk := func(name string, files map[string][]byte) string {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for n, data := range files {
			write(t, filepath.Join(dir, n), data)
		}
		return dir
	}
	script := []byte("#!/bin/sh\necho not wasm\n")
	wasmV2 := append([]byte{0, 'a', 's', 'm', 2, 0, 0, 0}, module[8:]...)
	for _, tc := range []struct {
		name string
		path string
		want []string
	}{
		{"two modules", mk("two", map[string][]byte{"a.wasm": module, "b.wasm": module}), []string{"two modules", "a.wasm", "b.wasm"}},
		{"no module", mk("none", map[string][]byte{bundle.ManifestFile: manifest}), []string{"no .wasm file"}},
		{"empty folder", mk("empty", nil), []string{"no .wasm file", "is empty"}},
		{"source folder", mk("cape", map[string][]byte{"app.py": []byte("def app(x): return x\n"), "requirements.txt": nil}), []string{"no .wasm file", "app.py, requirements.txt"}},
		{"extra file", mk("extra", map[string][]byte{"a.wasm": module, "README.md": []byte("hi")}), []string{`"README.md"`}},
		{"hidden file", mk("hidden", map[string][]byte{"a.wasm": module, ".DS_Store": nil}), []string{`".DS_Store"`}},
		{"manifest under another name", mk("json", map[string][]byte{"a.wasm": module, "manifest.json": manifest}), []string{`"manifest.json"`}},
		{"manifest case", mk("case", map[string][]byte{"a.wasm": module, "Vouch.json": manifest}), []string{`"Vouch.json"`}},
		{"subfolder", mk("sub", map[string][]byte{"a.wasm": module, "lib/x.wasm": module}), []string{`"lib"`}},
		{"not wasm in a folder", mk("script", map[string][]byte{"a.wasm": script}), []string{"not a WebAssembly binary"}},
		{"not wasm, single file", filepath.Join(mk("script1", map[string][]byte{"a.wasm": script}), "a.wasm"), []string{"a.wasm", "not a WebAssembly binary"}},
		{"wasm version 2", filepath.Join(mk("v2", map[string][]byte{"a.wasm": wasmV2}), "a.wasm"), []string{"not a WebAssembly binary"}},
		{"too short", filepath.Join(mk("short", map[string][]byte{"a.wasm": module[:5]}), "a.wasm"), []string{"5 bytes, too short"}},
		{"empty module", filepath.Join(mk("zero", map[string][]byte{"a.wasm": nil}), "a.wasm"), []string{"0 bytes, too short"}},
		{"bad manifest", mk("badman", map[string][]byte{"a.wasm": module, bundle.ManifestFile: []byte(`{"nmae":"typo"}`)}), []string{bundle.ManifestFile, "nmae"}},
		{"empty manifest", mk("emptyman", map[string][]byte{"a.wasm": module, bundle.ManifestFile: nil}), []string{bundle.ManifestFile}},
		{"manifest over 1 MiB", mk("bigman", map[string][]byte{"a.wasm": module, bundle.ManifestFile: append(append([]byte(`{"name":"x"`), bytes.Repeat([]byte(" "), 1<<20)...), '}')}), []string{bundle.ManifestFile, "larger than 1048576 bytes"}},
	} {
		_, err := bundle.Load(tc.path)
		if !errors.Is(err, bundle.ErrInvalid) {
			t.Errorf("%s: Load = %v, want an error wrapping ErrInvalid", tc.name, err)
			continue
		}
		if noModule := strings.Contains(err.Error(), "no .wasm file"); errors.Is(err, bundle.ErrNoModule) != noModule {
			t.Errorf("%s: errors.Is(%v, ErrNoModule) = %v", tc.name, err, !noModule)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
	}

	// A symbolic link is not a regular file: what is deployed must be
	// what the folder holds.
	link := mk("link", nil)
	if err := os.Symlink(filepath.Join(root, "extra", "a.wasm"), filepath.Join(link, "a.wasm")); err == nil {
		if _, err := bundle.Load(link); !errors.Is(err, bundle.ErrInvalid) || !strings.Contains(err.Error(), `"a.wasm"`) {
			t.Errorf("folder with a symlinked module: %v", err)
		}
	}
	// Missing paths are plain file-system errors.
	if _, err := bundle.Load(filepath.Join(root, "missing.wasm")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing path: %v", err)
	}
}

// TestLoadSizeLimit: modules over DefaultMaxSize are refused, without
// reading them whole when they are single files.
func TestLoadSizeLimit(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.wasm")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(module)
	if err := f.Truncate(bundle.DefaultMaxSize + 1); err != nil { // sparse
		t.Fatal(err)
	}
	f.Close()
	_, err = bundle.Load(big)
	if !errors.Is(err, bundle.ErrInvalid) || !strings.Contains(err.Error(), "bundle limit") {
		t.Fatalf("over-limit single file: %v", err)
	}
	if testing.Short() || raceEnabled {
		return // reading 64 MiB takes ~1 s, ~7 s under the race detector
	}
	// In a folder, the module is read up to the limit and refused.
	_, err = bundle.Load(dir)
	if !errors.Is(err, bundle.ErrInvalid) || !strings.Contains(err.Error(), "larger than") || !strings.Contains(err.Error(), "big.wasm") {
		t.Fatalf("over-limit module in a folder: %v", err)
	}
}

// TestLoadWithLimit: the limit is on the bundle's encoding, the size the
// runtime checks, whether the module alone is over it or only the module
// with its manifest and the encoding's framing.
func TestLoadWithLimit(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "f.wasm"), module)
	write(t, filepath.Join(dir, bundle.ManifestFile), manifest)
	enc := int64(len(mustNew(t, module, manifest).Encode()))
	for _, tc := range []struct {
		path  string
		limit int64
		ok    bool
	}{
		{dir, enc, true},
		{dir, enc - 1, false},                     // the module fits, the encoding does not
		{dir, int64(len(module)) - 1, false},      // the module does not fit
		{filepath.Join(dir, "f.wasm"), enc, true}, // no manifest: smaller
		{filepath.Join(dir, "f.wasm"), int64(len(module)), false},
		{filepath.Join(dir, "f.wasm"), int64(len(module)) - 1, false},
	} {
		b, err := bundle.LoadWithLimit(tc.path, tc.limit)
		if tc.ok {
			if err != nil || int64(len(b.Encode())) > tc.limit {
				t.Errorf("LoadWithLimit(%s, %d): %v", tc.path, tc.limit, err)
			}
			continue
		}
		if !errors.Is(err, bundle.ErrInvalid) || !errors.Is(err, bundle.ErrTooLarge) || !strings.Contains(err.Error(), "bundle limit") && !strings.Contains(err.Error(), "larger than") {
			t.Errorf("LoadWithLimit(%s, %d) = %v, want ErrTooLarge", tc.path, tc.limit, err)
		}
	}
	// A manifest over its own 1 MiB limit is a manifest error, not a
	// bundle-size one.
	write(t, filepath.Join(dir, bundle.ManifestFile), bytes.Repeat([]byte(" "), 1<<20+1))
	if _, err := bundle.LoadWithLimit(dir, 1<<30); !errors.Is(err, bundle.ErrManifest) || errors.Is(err, bundle.ErrTooLarge) {
		t.Errorf("huge manifest: %v", err)
	}
}

func TestNew(t *testing.T) {
	b, err := bundle.New(module, nil)
	if err != nil || b.ManifestJSON != nil || b.Name() != "" || b.Manifest != (bundle.Manifest{}) {
		t.Fatalf("New(module, nil) = %+v, %v", b, err)
	}
	for _, tc := range []struct {
		mod, man []byte
		want     string
	}{
		{nil, nil, "0 bytes"},
		{[]byte("\x00asm"), nil, "4 bytes"},
		{[]byte("\x00asm\x02\x00\x00\x00"), nil, "not a WebAssembly binary"},
		{[]byte("PK\x03\x04 a zip file"), nil, "not a WebAssembly binary"},
		{module, []byte{}, bundle.ManifestFile},
		{module, []byte("null trailing"), bundle.ManifestFile},
		{module, []byte(`{"limits":{"memory_mib":5000}}`), "memory_mib"},
	} {
		_, err := bundle.New(tc.mod, tc.man)
		if !errors.Is(err, bundle.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q, %q) = %v, want an ErrInvalid mentioning %q", tc.mod, tc.man, err, tc.want)
		}
		// Only manifest errors are manifest errors.
		if errors.Is(err, bundle.ErrManifest) != (tc.man != nil) {
			t.Errorf("New(%q, %q) = %v: ErrManifest is %v", tc.mod, tc.man, err, errors.Is(err, bundle.ErrManifest))
		}
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	for _, man := range [][]byte{nil, manifest, []byte(`{}`)} {
		b := mustNew(t, module, man)
		enc := b.Encode()
		back, err := bundle.Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(b)): %v", err)
		}
		if !bytes.Equal(back.Encode(), enc) || back.Checksum() != b.Checksum() || !bytes.Equal(back.Module, module) ||
			!bytes.Equal(back.ManifestJSON, man) || (man == nil) != (back.ManifestJSON == nil) || back.Manifest != b.Manifest {
			t.Fatalf("round trip changed the bundle: %+v", back)
		}
		// The result does not alias the request body.
		for i := range enc {
			enc[i] ^= 0xff
		}
		if back.Checksum() != b.Checksum() {
			t.Fatal("the decoded bundle aliases the encoding")
		}
	}
}

// TestDecodeRefuses: a deploy request's body has exactly one accepted
// encoding per bundle; anything else is refused with ErrInvalid.
func TestDecodeRefuses(t *testing.T) {
	mod, man := string(module), string(manifest)
	for _, tc := range []struct {
		name string
		enc  []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"raw module", module, "raw .wasm"},
		{"wrong tag", encoding("vouch/bundle/v2", 1, bundle.ModuleFile, mod), `"vouch/bundle/v2"`},
		{"tag case", encoding("Vouch/bundle/v1", 1, bundle.ModuleFile, mod), "tag"},
		{"no files", encoding(bundle.Tag, 0), "holds 0 files"},
		{"three files", encoding(bundle.Tag, 3, bundle.ModuleFile, mod, bundle.ManifestFile, man, "z", ""), "holds 3 files"},
		{"huge count", encoding(bundle.Tag, 1<<63, bundle.ModuleFile, mod), "files"},
		{"count too high", encoding(bundle.Tag, 2, bundle.ModuleFile, mod), "truncated"},
		{"count too low", encoding(bundle.Tag, 1, bundle.ModuleFile, mod, bundle.ManifestFile, man), "trailing"},
		{"unsorted", encoding(bundle.Tag, 2, bundle.ManifestFile, man, bundle.ModuleFile, mod), "not sorted"},
		{"duplicate module", encoding(bundle.Tag, 2, bundle.ModuleFile, mod, bundle.ModuleFile, mod), "repeat"},
		{"duplicate manifest", encoding(bundle.Tag, 2, bundle.ManifestFile, man, bundle.ManifestFile, man), "repeat"},
		{"unknown file", encoding(bundle.Tag, 1, "main.wasm", mod), `"main.wasm"`},
		{"unknown second file", encoding(bundle.Tag, 2, bundle.ModuleFile, mod, "zzz", "x"), `"zzz"`},
		{"unknown file sorting first", encoding(bundle.Tag, 2, "a", "x", bundle.ModuleFile, mod), `"a"`},
		{"manifest only", encoding(bundle.Tag, 1, bundle.ManifestFile, man), "no " + bundle.ModuleFile},
		{"trailing byte", append(encoding(bundle.Tag, 1, bundle.ModuleFile, mod), 0), "trailing"},
		{"trailing bundle", append(encoding(bundle.Tag, 1, bundle.ModuleFile, mod), encoding(bundle.Tag, 1, bundle.ModuleFile, mod)...), "trailing"},
		{"module not wasm", encoding(bundle.Tag, 1, bundle.ModuleFile, "\x00asm\x01\x00\x00"), "too short"},
		{"bad manifest", encoding(bundle.Tag, 2, bundle.ModuleFile, mod, bundle.ManifestFile, `{"x":1}`), "unknown field"},
		{"empty manifest", encoding(bundle.Tag, 2, bundle.ModuleFile, mod, bundle.ManifestFile, ""), bundle.ManifestFile},
	} {
		b, err := bundle.Decode(tc.enc)
		if !errors.Is(err, bundle.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Decode = %v, %v; want an ErrInvalid mentioning %q", tc.name, b, err, tc.want)
		}
	}
	// Every strict prefix of a valid encoding is refused.
	enc := mustNew(t, module, manifest).Encode()
	for n := 0; n < len(enc); n++ {
		if _, err := bundle.Decode(enc[:n]); !errors.Is(err, bundle.ErrInvalid) {
			t.Fatalf("Decode of the first %d of %d bytes: %v", n, len(enc), err)
		}
	}
	// A length prefix larger than what follows is truncation, not a panic
	// or a huge allocation.
	bad := encoding(bundle.Tag, 1, bundle.ModuleFile, mod)
	off := 4 + len(bundle.Tag) + 8 + 4 + len(bundle.ModuleFile)
	binary.BigEndian.PutUint32(bad[off:], 0xffffffff)
	if _, err := bundle.Decode(bad); !errors.Is(err, bundle.ErrInvalid) || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("oversized length prefix: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(mustNew(f, module, nil).Encode())
	f.Add(mustNew(f, module, manifest).Encode())
	f.Add(mustNew(f, wasmtest.Empty(), []byte(`{"allow_plaintext_input":true}`)).Encode())
	f.Add(encoding(bundle.Tag, 2, bundle.ManifestFile, "{}", bundle.ModuleFile, string(module)))
	f.Add(encoding(bundle.Tag, 1, "x", "y"))
	f.Add([]byte{})
	f.Add(module)
	f.Fuzz(func(t *testing.T, enc []byte) {
		b, err := bundle.Decode(enc)
		if err != nil {
			if !errors.Is(err, bundle.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if b != nil {
				t.Fatal("a bundle and an error")
			}
			return
		}
		// One bundle, one encoding: what decodes re-encodes to the same
		// bytes, and so has the checksum of what was sent.
		if again := b.Encode(); !bytes.Equal(again, enc) {
			t.Fatalf("Decode accepted\n%x\nwhich re-encodes as\n%x", enc, again)
		}
		if b.Checksum() != bundle.ChecksumOf(enc) {
			t.Fatal("checksum differs from the encoding's")
		}
		if _, err := bundle.New(b.Module, b.ManifestJSON); err != nil {
			t.Fatalf("decoded bundle is not valid: %v", err)
		}
	})
}
