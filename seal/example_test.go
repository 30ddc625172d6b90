package seal_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/vouch-dev/vouch/seal"
)

func Example() {
	const functionID = "k3v7example"
	const checksum = "50d858e0985ecc7f60418aaf0cc5ab587f42c2570a884095a9e8ccacd0f6545c"

	// The runtime's input key; clients learn its public half from the
	// runtime's attestation document.
	runtimeKey, err := seal.GenerateKey()
	if err != nil {
		panic(err)
	}
	// Its replay cache names this run of the runtime: its boot ID, which the
	// runtime publishes with its identity.
	cache := seal.NewReplayCache(0, 0) // 5 minutes, 1,000,000 inputs
	bootID := cache.BootID()

	// Client: seal an input for exactly this function and boot, with a
	// fresh reply key.
	replyKey, err := seal.GenerateKey()
	if err != nil {
		panic(err)
	}
	sealed, err := seal.SealInput(runtimeKey.PublicKey(), functionID, checksum,
		[]byte(`{"amount": 10}`), &seal.InputOptions{BootID: bootID, ReplyKey: replyKey.PublicKey()})
	if err != nil {
		panic(err)
	}

	// Runtime: open it while running that function, run it, seal the output.
	in, err := runtimeKey.OpenInput(functionID, checksum, sealed, cache, time.Now())
	if err != nil {
		panic(err)
	}
	fmt.Printf("runtime got %s\n", in.Input)
	sealedOut, err := seal.SealOutput(in.ReplyKey, functionID, checksum, sha256.Sum256(in.Input), []byte(`{"ok": true}`))
	if err != nil {
		panic(err)
	}

	// The same sealed input cannot be used twice...
	_, err = runtimeKey.OpenInput(functionID, checksum, sealed, cache, time.Now())
	fmt.Println(errors.Is(err, seal.ErrReplay))
	// ...nor by another function.
	_, err = runtimeKey.OpenInput("k3v7other", checksum, sealed, cache, time.Now())
	fmt.Println(errors.Is(err, seal.ErrDecrypt))
	// ...nor after the runtime restarted, with a new cache and boot ID.
	_, err = runtimeKey.OpenInput(functionID, checksum, sealed, seal.NewReplayCache(0, 0), time.Now())
	fmt.Println(errors.Is(err, seal.ErrStaleBoot))

	// Client: open the output of its own input.
	out, err := replyKey.OpenOutput(functionID, checksum, sha256.Sum256([]byte(`{"amount": 10}`)), sealedOut)
	if err != nil {
		panic(err)
	}
	fmt.Printf("client got %s\n", out)
	// Output:
	// runtime got {"amount": 10}
	// true
	// true
	// true
	// client got {"ok": true}
}
