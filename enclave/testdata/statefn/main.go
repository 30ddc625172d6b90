// Command statefn exercises the state host functions in the enclave's
// tests. Input: "incr", "put:K=V", "vput:K=V", "get:K", "vget:K",
// "put-then-fail:K=V", "put-then-panic:K=V", "put-then-spin:K=V", "rand",
// "now".
package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vouch-dev/vouch/guest"
)

func init() { guest.Handle(handle) }

func main() { guest.Main() }

func handle(in []byte) ([]byte, error) {
	cmd, arg, _ := strings.Cut(string(in), ":")
	k, v, _ := strings.Cut(arg, "=")
	switch cmd {
	case "incr":
		n := guest.CounterNext("calls")
		guest.Put(guest.Durable, "last", []byte(strconv.FormatInt(n, 10)))
		return []byte(strconv.FormatInt(n, 10)), nil
	case "put":
		guest.Put(guest.Durable, k, []byte(v))
		return []byte("ok"), nil
	case "vput":
		guest.Put(guest.Volatile, k, []byte(v))
		return []byte("ok"), nil
	case "get", "vget":
		ns := guest.Durable
		if cmd == "vget" {
			ns = guest.Volatile
		}
		val, ok := guest.Get(ns, arg)
		if !ok {
			return []byte("<none>"), nil
		}
		return val, nil
	case "del":
		guest.Delete(guest.Durable, arg)
		return []byte("ok"), nil
	case "put-then-fail":
		guest.Put(guest.Durable, k, []byte(v))
		guest.CounterNext("calls")
		return nil, errors.New("failing after a write")
	case "put-then-panic":
		guest.Put(guest.Durable, k, []byte(v))
		panic("panicking after a write")
	case "put-then-spin":
		guest.Put(guest.Durable, k, []byte(v))
		for {
		}
	case "rand":
		b := make([]byte, 16)
		guest.Random(b)
		return []byte(hex.EncodeToString(b)), nil
	case "now":
		return []byte(strconv.FormatInt(guest.Now().Unix(), 10)), nil
	}
	return nil, fmt.Errorf("unknown command %q", cmd)
}
