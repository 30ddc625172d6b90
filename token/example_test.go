package token_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/vouch-dev/vouch/token"
)

func Example() {
	// The runtime's token key. A real runtime loads it from its sealed
	// storage; it never leaves the runtime.
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	const issuer = "vouch:example"
	checksum := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

	iss, err := token.NewIssuer(key, issuer)
	if err != nil {
		panic(err)
	}
	tok, minted, err := iss.Mint("k3v7hello", checksum, time.Hour)
	if err != nil {
		panic(err)
	}
	fmt.Println("minted for", minted.FunctionID, "valid for", minted.ExpiresAt.Sub(minted.IssuedAt))

	ver, err := token.NewVerifier(key.Public().(ed25519.PublicKey), issuer, token.NoRevocations)
	if err != nil {
		panic(err)
	}
	c, err := ver.Verify(tok, "k3v7hello")
	fmt.Println("verified:", err == nil, c.ID == minted.ID)

	_, err = ver.Verify(tok, "k3v7other")
	fmt.Println(errors.Is(err, token.ErrWrongFunction), token.HTTPStatus(err))
	fmt.Println(err)

	_, err = ver.Verify("", "k3v7hello")
	fmt.Println(token.HTTPStatus(err), err)
	// Output:
	// minted for k3v7hello valid for 1h0m0s
	// verified: true true
	// true 403
	// token: function token is for another function: token is for function "k3v7hello", not "k3v7other"
	// 401 token: no function token presented
}

func ExampleCheckOwner() {
	expected, err := token.GenerateOwnerToken()
	if err != nil {
		panic(err)
	}
	fmt.Println(token.CheckOwner(expected, expected))
	fmt.Println(token.CheckOwner("vouch_owner_guess", expected))
	// Output:
	// true
	// false
}
