// Command testfn is a guest for the sandbox's tests. Its input selects a
// behaviour: "echo:X", "fail:MSG", "panic", "alloc", "spin", "sleep",
// "exit3", "big:N", "log:N", "probe", "mono", "verify:PUB:MSG:SIG" (hex;
// answers true or false), "verify-raw:oob" and "verify-raw:huge" (call
// ed25519_verify with a range outside memory, or too long a message),
// "sha256:MSG" (hex; answers the hex digest), "sha256-raw:oob" and
// "sha256-raw:huge" (the same for the sha256 host function).
//
// Rebuild: the tests build it with internal/harness/testbuild (GOOS=wasip1
// GOARCH=wasm, as a command and as a reactor).
package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/guest"
)

func init() { guest.Handle(handle) }

func main() { guest.Main() }

var hoard [][]byte

func handle(in []byte) ([]byte, error) {
	cmd, arg, _ := strings.Cut(string(in), ":")
	switch cmd {
	case "echo":
		return []byte(arg), nil
	case "fail":
		return nil, errors.New(arg)
	case "panic":
		panic("testfn panics on purpose")
	case "alloc":
		for {
			hoard = append(hoard, make([]byte, 1<<20))
		}
	case "spin":
		for {
		}
	case "sleep":
		time.Sleep(time.Hour)
		return []byte("woke"), nil
	case "exit3":
		fmt.Fprintln(os.Stderr, "exiting with 3")
		os.Exit(3)
	case "big":
		n, _ := strconv.Atoi(arg)
		return make([]byte, n), nil
	case "log":
		n, _ := strconv.Atoi(arg)
		os.Stderr.Write([]byte(strings.Repeat("x", n)))
		return []byte("ok"), nil
	case "mono":
		return []byte(strconv.FormatInt(int64(guest.Monotonic()), 10)), nil
	case "verify":
		parts := strings.Split(arg, ":")
		if len(parts) != 3 {
			return nil, errors.New("verify:PUB:MSG:SIG")
		}
		var b [3][]byte
		for i, p := range parts {
			var err error
			if b[i], err = hex.DecodeString(p); err != nil {
				return nil, err
			}
		}
		return []byte(strconv.FormatBool(guest.VerifyEd25519(b[0], b[1], b[2]))), nil
	case "verify-raw":
		return []byte(strconv.Itoa(int(verifyRaw(arg)))), nil
	case "sha256":
		msg, err := hex.DecodeString(arg)
		if err != nil {
			return nil, err
		}
		sum := guest.SHA256(msg)
		return []byte(hex.EncodeToString(sum[:])), nil
	case "sha256-raw":
		sha256Raw(arg)
		return []byte("returned"), nil
	case "probe":
		// Report what the sandbox grants: nothing but clocks and randomness.
		var b strings.Builder
		fmt.Fprintf(&b, "env=%d args=%d", len(os.Environ()), len(os.Args))
		if _, err := os.ReadFile("/etc/passwd"); err == nil {
			b.WriteString(" fs=open")
		} else {
			b.WriteString(" fs=denied")
		}
		if _, err := os.ReadDir("."); err == nil {
			b.WriteString(" cwd=open")
		} else {
			b.WriteString(" cwd=denied")
		}
		if _, err := net.Dial("tcp", "127.0.0.1:1"); err == nil {
			b.WriteString(" net=open")
		} else {
			b.WriteString(" net=denied")
		}
		if time.Now().Year() >= 2024 {
			b.WriteString(" clock=real")
		}
		return []byte(b.String()), nil
	}
	return nil, fmt.Errorf("unknown command %q", cmd)
}
