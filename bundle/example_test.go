package bundle_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/vouch-dev/vouch/bundle"
)

// emptyModule is the smallest WebAssembly module: the header alone.
var emptyModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // \0asm, version 1
}

func ExampleBundle_Checksum() {
	// The checksum covers the module and the manifest's exact bytes, and
	// nothing else: not the file names, not the times.
	b, err := bundle.New(emptyModule, []byte(`{"name":"hello"}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(b.Name())
	fmt.Println(b.Checksum())
	// Output:
	// hello
	// f88b63fd4608afc589d33b401d92b8fad6bd454854cbc4d392db2ecdd48439bb
}

func ExampleLoad() {
	dir, err := os.MkdirTemp("", "bundle-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// A folder holds one .wasm file, under any name, and optionally
	// vouch.json.
	os.WriteFile(filepath.Join(dir, "hello.wasm"), emptyModule, 0o644)
	os.WriteFile(filepath.Join(dir, "vouch.json"), []byte(`{"name":"hello"}`), 0o644)
	b, err := bundle.Load(dir)
	if err != nil {
		log.Fatal(err)
	}
	same, _ := bundle.New(emptyModule, []byte(`{"name":"hello"}`))
	fmt.Println(b.Name(), b.Checksum() == same.Checksum())

	// Anything else in the folder is refused, so that what is deployed is
	// exactly what the checksum covers.
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("todo"), 0o644)
	_, err = bundle.Load(dir)
	fmt.Println(err != nil)
	// Output:
	// hello true
	// true
}
