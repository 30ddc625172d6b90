// Command go-echo is a vouch function in Go that returns its input, the Go
// twin of examples/c-echo (docs/FUNCTIONS.md). Build it as a WASI reactor,
// the fast path, from this folder:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o echo.wasm .
//
// or drop -buildmode=c-shared for a WASI command.
package main

import "github.com/vouch-dev/vouch/guest"

func init() { guest.Handle(handle) }

func main() { guest.Main() }

func handle(input []byte) ([]byte, error) {
	if len(input) == 0 {
		// Only the code reaches a caller whose input was sealed.
		return nil, guest.Refuse(guest.MissingValue, "the input is empty; send the bytes to echo")
	}
	return input, nil
}
