package client_test

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
)

// A checksum in upper case is the same checksum: Run, CheckFunction and
// MintToken lower-case it, and a checksum that is not 64 hex digits is
// refused before anything is sent, by an error that names the field.
func TestUpperCaseChecksum(t *testing.T) {
	env := enclavetest.Start(t)
	ref := env.DeployLeader()
	ctx := context.Background()
	c := env.Client(client.Options{})
	upper := ref
	upper.Checksum = strings.ToUpper(ref.Checksum)
	if upper.Checksum == ref.Checksum {
		t.Fatalf("checksum %s has no letters", ref.Checksum)
	}
	if err := c.CheckFunction(ctx, upper); err != nil {
		t.Fatalf("CheckFunction with an upper-case checksum: %v", err)
	}
	res, err := c.Run(ctx, upper, []byte(`{"cluster":"demo","node_list":["5000","5001"]}`))
	if err != nil {
		t.Fatalf("Run with an upper-case checksum: %v", err)
	}
	if res.Receipt.FunctionChecksum != ref.Checksum {
		t.Fatalf("receipt names checksum %s, want %s", res.Receipt.FunctionChecksum, ref.Checksum)
	}
	tok, err := c.MintToken(ctx, ref.ID, upper.Checksum, time.Hour)
	if err != nil {
		t.Fatalf("MintToken with an upper-case checksum: %v", err)
	}
	if _, err := c.Run(ctx, client.FunctionRef{ID: ref.ID, Checksum: ref.Checksum, Token: tok.FunctionToken}, []byte(`{"cluster":"demo","node_list":["5000"]}`)); err != nil {
		t.Fatalf("running with the token minted for the upper-case checksum: %v", err)
	}

	// Another checksum in upper case is still another checksum.
	other := upper
	other.Checksum = strings.Repeat("AB", 32)
	if err := c.CheckFunction(ctx, other); !errors.Is(err, client.ErrChecksumMismatch) {
		t.Fatalf("CheckFunction with another checksum: %v, want ErrChecksumMismatch", err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("g", 64), upper.Checksum + "0"} {
		r := ref
		r.Checksum = bad
		if _, err := c.Run(ctx, r, []byte("{}")); err == nil || !strings.Contains(err.Error(), "FunctionRef.Checksum") {
			t.Errorf("Run with checksum %q: %v, want an error naming FunctionRef.Checksum", bad, err)
		}
		if err := c.CheckFunction(ctx, r); err == nil || !strings.Contains(err.Error(), "FunctionRef.Checksum") {
			t.Errorf("CheckFunction with checksum %q: %v, want an error naming FunctionRef.Checksum", bad, err)
		}
		if _, err := c.MintToken(ctx, ref.ID, bad, time.Hour); err == nil || !strings.Contains(err.Error(), "function checksum") {
			t.Errorf("MintToken with checksum %q: %v, want an error naming the checksum", bad, err)
		}
	}
}

// The trust policy's hex values may be in upper case too: a client pinned
// in upper case attests the runtime it pins, and the caller's PCR map is
// left as it was.
func TestUpperCaseTrust(t *testing.T) {
	env := enclavetest.Start(t)
	pcr0, err := attest.ExecutableDigest()
	if err != nil {
		t.Fatal(err)
	}
	upper0 := strings.ToUpper(hex.EncodeToString(pcr0))
	pcrs := map[string][]string{"0": {upper0}}
	trust := api.Trust{Platform: attest.PlatformSimulated, AllowSimulated: true,
		RootFingerprint: strings.ToUpper(env.RootFingerprint), KeyID: strings.ToUpper(env.Server.KeyID()), PCRs: pcrs}
	c, err := client.Dial(context.Background(), env.URL, client.Options{Trust: trust})
	if err != nil {
		t.Fatalf("Dial with an upper-case trust policy: %v", err)
	}
	c.Close()
	if pcrs["0"][0] != upper0 {
		t.Fatalf("the caller's PCR map was changed: %v", pcrs)
	}
	// Upper case pins the same values: another key in upper case is still
	// another key.
	trust.KeyID = strings.Repeat("AB", 32)
	c, err = client.New(env.URL, client.Options{Trust: trust})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Attest(context.Background()); !errors.Is(err, client.ErrPinnedKey) {
		t.Fatalf("another key, in upper case: %v, want ErrPinnedKey", err)
	}
}
