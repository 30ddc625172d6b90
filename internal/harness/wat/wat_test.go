package wat

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/vouch-dev/vouch/internal/harness/wasmtest"
)

// The modules of wasmtest, assembled by hand byte by byte, written again
// as text: the assembler must produce the same bytes.
func TestMatchesHandAssembled(t *testing.T) {
	const types = `(type (func)) (type (func (param i32)))`
	cases := []struct {
		name string
		src  string
		want []byte
	}{
		{"Loop", `(module ` + types + ` (memory (export "memory") 1)
			(func (export "_start") (type 0) (loop $l (br $l))))`, wasmtest.Loop()},
		{"LoopFlat", `(module ` + types + ` (memory (export "memory") 1)
			(func (export "_start") (type 0) loop $l br $l end))`, wasmtest.Loop()},
		{"Trap", `(module ` + types + ` (memory (export "memory") 1) (func (export "_start") (type 0) unreachable))`, wasmtest.Trap()},
		{"Exit", `(module ` + types + `
			(import "wasi_snapshot_preview1" "proc_exit" (func (type 1)))
			(memory (export "memory") 1)
			(func (export "_start") (type 0) (call 0 (i32.const 3))))`, wasmtest.Exit(3)},
		{"GrowForever", `(module ` + types + ` (memory (export "memory") 1)
			(func (export "_start") (type 0)
				(block $done
					(loop $grow
						(br_if $done (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
						(br $grow)))
				unreachable))`, wasmtest.GrowForever()},
		{"Recurse", `(module ` + types + ` (memory (export "memory") 1)
			(func $start (export "_start") (type 0) (call $f (i32.const 62)))
			(func $f (param $n i32)
				(if (i32.eqz (local.get $n))
					(then)
					(else
						(call $f (i32.sub (local.get $n) (i32.const 1)))
						(call $f (i32.sub (local.get $n) (i32.const 1)))))))`, wasmtest.Recurse()},
		{"StartSetsGlobal", `(module (type (func)) (memory (export "memory") 1)
			(global $g (mut i32) (i32.const 0))
			(func $init (global.set $g (i32.const 1)))
			(func (export "_start") global.get $g i32.const 1 i32.eq br_if 0 unreachable)
			(start $init))`, wasmtest.StartSetsGlobal()},
		{"StartLoop", `(module (type (func)) (type (func (param i32) (result i32))) (memory (export "memory") 1)
			(func $loop (loop (br 0)))
			(func (export "_initialize"))
			(func (export "vouch_run") (type 1) (i32.const 0))
			(start $loop))`, wasmtest.StartLoop(true)},
		{"GrowTableForever", `(module (type (func)) (table 1 funcref) (memory (export "memory") 1)
			(func (export "_start")
				block loop
					(table.grow (ref.null func) (i32.const 65536))
					i32.const -1 i32.eq br_if 1
					br 0
				end end
				unreachable))`, wasmtest.GrowTableForever()},
		{"LogInput", `(module ` + types + ` (type (func (param i32 i32 i32 i32) (result i32)))
			(import "wasi_snapshot_preview1" "fd_read" (func $fd_read (type 2)))
			(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (type 2)))
			(import "wasi_snapshot_preview1" "proc_exit" (func $exit (type 1)))
			(memory (export "memory") 1)
			(func (export "_start") (type 0)
				(i32.store (i32.const 0) (i32.const 16))
				(i32.store align=4 (i32.const 4) (i32.const 1024))
				(drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
				(i32.store (i32.const 4) (i32.load (i32.const 8)))
				(drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 12)))
				(drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 12)))
				(call $exit (i32.const 7))))`, wasmtest.LogInput(7)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Assemble(c.src)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.want) {
				t.Fatalf("got  % x\nwant % x", got, c.want)
			}
		})
	}
}

// Instructions and sections that wasmtest does not build, against bytes
// from the specification's encoding tables.
func TestEncodings(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want string // hex, sections after the header
	}{
		{"consts", `(module (func (result i64) (drop (i32.const -1)) (drop (i32.const 0xffffffff)) (drop (i32.const 2147483648)) (i64.const -129)))`,
			"01 05 01 60 00 01 7e 03 02 01 00 0a 14 01 12 00 41 7f 1a 41 7f 1a 41 80 80 80 80 78 1a 42 ff 7e 0b"},
		{"locals", `(module (func (param $a i32) (local $b i64) (local i64 i32) (local.set $b (i64.extend_i32_u (local.get $a))) (local.set 3 (i32.const 1))))`,
			"01 05 01 60 01 7f 00 03 02 01 00 0a 11 01 0f 02 02 7e 01 7f 20 00 ad 21 01 41 01 21 03 0b"},
		{"bulk memory", `(module (memory 1) (data $d "hi") (data (i32.const 8) "a\62\n")
			(func (memory.init $d (i32.const 0) (i32.const 0) (i32.const 2)) (data.drop 0)
				(memory.fill (i32.const 0) (i32.const 7) (i32.const 3)) (memory.copy (i32.const 1) (i32.const 0) (i32.const 2))
				(drop (memory.size))))`,
			"01 04 01 60 00 00 03 02 01 00 05 03 01 00 01 0c 01 02 0a 27 01 25 00 41 00 41 00 41 02 fc 08 00 00 fc 09 00 41 00 41 07 41 03 fc 0b 00 41 01 41 00 41 02 fc 0a 00 00 3f 00 1a 0b 0b 0d 02 01 02 68 69 00 41 08 0b 03 61 62 0a"},
		{"call_indirect", `(module (type $t (func (result i32))) (table 2 funcref) (elem (i32.const 0) $a $b)
			(func $a (type $t) i32.const 1) (func $b (result i32) i32.const 2)
			(func (export "f") (result i32) (call_indirect (type $t) (i32.const 1))))`,
			"01 05 01 60 00 01 7f 03 04 03 00 00 00 04 04 01 70 00 02 07 05 01 01 66 00 02 09 08 01 00 41 00 0b 02 00 01 0a 13 03 04 00 41 01 0b 04 00 41 02 0b 07 00 41 01 11 00 00 0b"},
		{"br_table and labels", `(module (func (param i32) (result i32)
			(block $a (block $b (br_table $a $b 0 (local.get 0)))) (if (result i32) (local.get 0) (then (i32.const 1)) (else (i32.const 2)))))`,
			"01 06 01 60 01 7f 01 7f 03 02 01 00 0a 1b 01 19 00 02 40 02 40 20 00 0e 02 01 00 00 0b 0b 20 00 04 7f 41 01 05 41 02 0b 0b"},
		{"globals imports start", `(module (import "m" "g" (global $ig i32)) (import "m" "f" (func $f (param i32)))
			(global $g (export "g") (mut i64) (i64.const 5)) (func $s (call $f (global.get $ig)) (global.set $g (i64.const 0))) (start $s))`,
			"01 08 02 60 01 7f 00 60 00 00 02 0e 02 01 6d 01 67 03 7f 00 01 6d 01 66 00 00 03 02 01 01 06 06 01 7e 01 42 05 0b 07 05 01 01 67 03 01 08 01 01 0a 0c 01 0a 00 23 00 10 00 42 00 24 01 0b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Assemble(c.src)
			if err != nil {
				t.Fatal(err)
			}
			want := append([]byte("\x00asm\x01\x00\x00\x00"), unhex(t, c.want)...)
			if !bytes.Equal(got, want) {
				t.Fatalf("got  % x\nwant % x", got[8:], want[8:])
			}
			// And wazero accepts it.
			rt := wazero.NewRuntime(context.Background())
			defer rt.Close(context.Background())
			if _, err := rt.CompileModule(context.Background(), got); err != nil {
				t.Fatalf("wazero refuses it: %v", err)
			}
		})
	}
}

func unhex(t *testing.T, s string) []byte {
	var b []byte
	for _, f := range strings.Fields(s) {
		var v byte
		for _, c := range f {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				v |= byte(c-'a') + 10
			default:
				t.Fatalf("bad hex %q", f)
			}
		}
		b = append(b, v)
	}
	return b
}

func TestErrors(t *testing.T) {
	cases := []struct{ src, want string }{
		{``, "one (module"},
		{`(module) (module)`, "one (module"},
		{`(module (func (br $nowhere)))`, "unknown label $nowhere"},
		{`(module (func (br 1)))`, "deeper"},
		{`(module (func (i32.frobnicate)))`, "unknown instruction"},
		{`(module (func block))`, "not closed"},
		{`(module (func end))`, "end without a block"},
		{`(module (func (call $f)))`, "unknown function $f"},
		{`(module (func (local.get $x)))`, "unknown local $x"},
		{`(module (func $f) (func $f))`, "defined twice"},
		{`(module (memory 1) (func (i32.const 4294967296)))`, "not an i32"},
		{`(module (memory x))`, "not an unsigned 32-bit number"},
		{`(module (func (i32.load align=3 (i32.const 0))))`, "not a power of 2"},
		{`(module (data "\zz"))`, "bad escape"},
		{`(module (func`, "not closed"},
		{`(module (; comment`, "comment is not closed"},
		{`(module (widget))`, "unknown module field"},
	}
	for _, c := range cases {
		_, err := Assemble(c.src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.src, err, c.want)
		}
	}
	_, err := Assemble("(module\n\n (func (br $x)))")
	var we *Error
	if !errors.As(err, &we) || we.Line != 3 {
		t.Errorf("error %v does not name line 3", err)
	}
}

func FuzzAssemble(f *testing.F) {
	f.Add(`(module (memory (export "memory") 1 1) (func (export "_start") (loop $l (memory.fill (i32.const 0) (i32.const 7) (i32.const 65536)) (br $l))))`)
	f.Add(`(module (type (func)) (table 1 funcref) (elem (i32.const 0) 0) (func (call_indirect (type 0) (i32.const 0))))`)
	f.Add(`(module (func (param $a i32) (result i32) block $b (result i32) local.get $a br_if $b i32.const 2 end))`)
	f.Add(`(module (data "a\00\u{1F600}") (func (if (i32.const 1) (then nop) (else unreachable))))`)
	f.Fuzz(func(t *testing.T, src string) {
		Assemble(src) // must not panic
	})
}
