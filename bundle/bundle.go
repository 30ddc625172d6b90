// Package bundle loads WebAssembly function bundles and computes their
// checksums.
//
// A bundle is what a user deploys: one WebAssembly module (WASI preview 1)
// and an optional vouch.json manifest. On disk it is either a single .wasm
// file or a folder that holds exactly one .wasm file and, optionally,
// vouch.json. Whatever the file and folder names, the module is stored in the
// bundle as "function.wasm" and the manifest as "vouch.json", so the checksum
// depends only on the bytes a user built.
//
// The canonical encoding (docs/FORMATS.md, "Function bundles") is also the
// wire format of a deploy request:
//
//	String("vouch/bundle/v1") Uint64(n) { String(name) Bytes(content) } * n
//
// in the encoding of package canon, with files sorted by name byte-wise. The
// checksum is the lowercase hex SHA-256 of those bytes. Anyone can recompute
// it with `vouch checksum PATH` or in a few lines of another language.
package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/vouch-dev/vouch/internal/canon"
)

// File names inside a bundle.
const (
	ModuleFile   = "function.wasm"
	ManifestFile = "vouch.json"
)

// Tag is the domain tag that starts a bundle's canonical encoding.
const Tag = "vouch/bundle/v1"

// DefaultMaxSize is the default largest encoded bundle a runtime accepts
// (vouch enclave --max-bundle-size) and the CLI sends (vouch deploy
// --max-bundle-size). The limit is the runtime's, for every function: a
// runtime must read a bundle before it can read its manifest, so no
// manifest can raise it.
const DefaultMaxSize = 64 << 20

// wasmMagic starts every WebAssembly binary module (magic and version 1).
var wasmMagic = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// ErrInvalid is wrapped by every error about a malformed bundle.
var ErrInvalid = errors.New("invalid bundle")

// Bundle is a function's deployable content.
type Bundle struct {
	// Module is the WebAssembly binary.
	Module []byte
	// ManifestJSON is the raw vouch.json, or nil when the bundle has none.
	// The checksum covers these exact bytes.
	ManifestJSON []byte
	// Manifest is ManifestJSON decoded, or the zero Manifest.
	Manifest Manifest
}

// New builds a bundle from a module and an optional raw manifest, checking
// both.
func New(module, manifestJSON []byte) (*Bundle, error) {
	if !bytes.HasPrefix(module, wasmMagic) {
		if len(module) < len(wasmMagic) {
			return nil, fmt.Errorf("%w: module is %d bytes, too short to be WebAssembly", ErrInvalid, len(module))
		}
		return nil, fmt.Errorf("%w: module is not a WebAssembly binary (it does not start with \\0asm version 1)", ErrInvalid)
	}
	b := &Bundle{Module: module}
	if manifestJSON != nil {
		m, err := ParseManifest(manifestJSON)
		if err != nil {
			return nil, err
		}
		b.ManifestJSON = manifestJSON
		b.Manifest = *m
	}
	return b, nil
}

// ErrNoModule is wrapped, with ErrInvalid, by the error about a folder
// that holds no .wasm file: source code, perhaps, that is still to be built
// (docs/FUNCTIONS.md).
var ErrNoModule = errors.New("no .wasm file")

// ErrTooLarge is wrapped, with ErrInvalid, by errors about a bundle over
// the size limit given to LoadWithLimit.
var ErrTooLarge = errors.New("too large")

// Load reads a bundle from a .wasm file or from a folder that holds one .wasm
// file and an optional vouch.json. Anything else in the folder is an error, so
// that what is deployed is exactly what the checksum covers. The bundle's
// encoding may be at most DefaultMaxSize bytes.
func Load(path string) (*Bundle, error) { return LoadWithLimit(path, DefaultMaxSize) }

// LoadWithLimit is Load with a limit of maxSize bytes on the bundle's
// encoding, the size a runtime compares with its --max-bundle-size.
func LoadWithLimit(path string, maxSize int64) (*Bundle, error) {
	b, err := load(path, maxSize)
	if err != nil {
		return nil, err
	}
	if n := int64(len(b.Encode())); n > maxSize {
		return nil, fmt.Errorf("%w: %w: %s encodes to %d bytes, more than the %d-byte bundle limit", ErrInvalid, ErrTooLarge, path, n, maxSize)
	}
	return b, nil
}

func load(path string, maxSize int64) (*Bundle, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		if fi.Size() > maxSize {
			return nil, fmt.Errorf("%w: %w: %s is %d bytes, more than the %d-byte bundle limit", ErrInvalid, ErrTooLarge, path, fi.Size(), maxSize)
		}
		mod, err := readLimited(path, maxSize)
		if err != nil {
			return nil, err
		}
		b, err := New(mod, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return b, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	// A folder with no module at all is told so before any other file is
	// found unexpected: it is most likely a function's source.
	if !slices.ContainsFunc(entries, func(e os.DirEntry) bool { return strings.HasSuffix(e.Name(), ".wasm") }) {
		names := make([]string, 0, 6)
		for _, e := range entries {
			if len(names) == 5 {
				names = append(names, "…")
				break
			}
			names = append(names, e.Name())
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("%w: %w: %s is empty", ErrInvalid, ErrNoModule, path)
		}
		return nil, fmt.Errorf("%w: %w: %s holds %s", ErrInvalid, ErrNoModule, path, strings.Join(names, ", "))
	}
	var wasmName string
	var manifest []byte
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == ManifestFile && e.Type().IsRegular():
			if manifest, err = readLimited(filepath.Join(path, name), 1<<20); err != nil {
				return nil, err
			}
		case strings.HasSuffix(name, ".wasm") && e.Type().IsRegular():
			if wasmName != "" {
				return nil, fmt.Errorf("%w: %s holds two modules, %s and %s; a bundle holds exactly one .wasm file", ErrInvalid, path, wasmName, name)
			}
			wasmName = name
		default:
			return nil, fmt.Errorf("%w: unexpected %q in %s; a bundle folder holds one .wasm file and an optional %s (deploy the .wasm file itself to leave other files out)", ErrInvalid, name, path, ManifestFile)
		}
	}
	if wasmName == "" { // a .wasm that is not a regular file
		return nil, fmt.Errorf("%w: %w: %s holds no .wasm file that is a regular file", ErrInvalid, ErrNoModule, path)
	}
	mod, err := readLimited(filepath.Join(path, wasmName), maxSize)
	if err != nil {
		return nil, err
	}
	b, err := New(mod, manifest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// errTooLarge is ErrTooLarge for a module; a manifest's limit is its own.
func errTooLarge(path string) error {
	if filepath.Base(path) == ManifestFile {
		return ErrManifest
	}
	return ErrTooLarge
}

func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: %w: %s is larger than %d bytes", ErrInvalid, errTooLarge(path), path, max)
	}
	return data, nil
}

// Encode returns the bundle's canonical encoding.
func (b *Bundle) Encode() []byte {
	type file struct {
		name string
		data []byte
	}
	files := []file{{ModuleFile, b.Module}}
	if b.ManifestJSON != nil {
		files = append(files, file{ManifestFile, b.ManifestJSON})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	c := canon.New(Tag).Uint64(uint64(len(files)))
	for _, f := range files {
		c.String(f.name).Bytes(f.data)
	}
	return c.Message()
}

// Checksum returns the lowercase hex SHA-256 of the canonical encoding.
func (b *Bundle) Checksum() string {
	return ChecksumOf(b.Encode())
}

// ChecksumOf returns the lowercase hex SHA-256 of an encoded bundle.
func ChecksumOf(encoded []byte) string {
	sum := sha256.Sum256(encoded)
	return hex.EncodeToString(sum[:])
}

// Name returns the manifest's name, or "" when it has none.
func (b *Bundle) Name() string { return b.Manifest.Name }

// Decode parses a canonical encoding, as received by a deploy request. It
// accepts only the exact bytes Encode would produce for the result, so a
// bundle has one encoding and one checksum.
func Decode(encoded []byte) (*Bundle, error) {
	if bytes.HasPrefix(encoded, wasmMagic[:4]) {
		// The magic would otherwise read as a tag length of about 6 MB.
		return nil, fmt.Errorf("%w: this is a raw .wasm file, not a bundle encoding (deploy it with `vouch deploy`, which encodes it)", ErrInvalid)
	}
	r := canon.NewReader(encoded)
	if tag := r.String(); r.Err() == nil && tag != Tag {
		return nil, fmt.Errorf("%w: encoding starts with tag %q, want %q (is this a raw .wasm file? deploy it with `vouch deploy`, which encodes it)", ErrInvalid, truncate(tag, 32), Tag)
	}
	n := r.Uint64()
	if r.Err() == nil && (n < 1 || n > 2) {
		return nil, fmt.Errorf("%w: bundle holds %d files, want 1 or 2", ErrInvalid, n)
	}
	var module, manifest []byte
	prev := ""
	for i := uint64(0); i < n && r.Err() == nil; i++ {
		name := r.String()
		data := r.Bytes()
		if r.Err() != nil {
			break
		}
		if i > 0 && name <= prev {
			return nil, fmt.Errorf("%w: files are not sorted by name or repeat (%q after %q)", ErrInvalid, truncate(name, 64), truncate(prev, 64))
		}
		prev = name
		switch name {
		case ModuleFile:
			module = data
		case ManifestFile:
			manifest = data
		default:
			return nil, fmt.Errorf("%w: unexpected file %q (a bundle holds %s and optionally %s)", ErrInvalid, truncate(name, 64), ModuleFile, ManifestFile)
		}
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if module == nil {
		return nil, fmt.Errorf("%w: bundle has no %s", ErrInvalid, ModuleFile)
	}
	return New(bytes.Clone(module), cloneOrNil(manifest))
}

func cloneOrNil(p []byte) []byte {
	if p == nil {
		return nil
	}
	return bytes.Clone(p)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
