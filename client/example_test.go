package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
)

// ExampleNew shows what New checks before any network call: the URL and
// the trust policy.
func ExampleNew() {
	c, err := client.New("", client.Options{})
	fmt.Println(c.URL(), err)

	c, err = client.New("https://vouch.example:8443/runtime/", client.Options{})
	fmt.Println(c.URL(), err)

	_, err = client.New("vouch.example:7070", client.Options{})
	fmt.Println(err)

	// A SIMULATED platform must be allowed on purpose.
	_, err = client.New("", client.Options{Trust: api.Trust{Platform: "SIMULATED"}})
	fmt.Println(err)

	_, err = client.New("", client.Options{Trust: api.Trust{PCRs: map[string][]string{"0": {"abc"}}}})
	fmt.Println(err)
	// Output:
	// https://127.0.0.1:7070 <nil>
	// https://vouch.example:8443/runtime <nil>
	// runtime URL "vouch.example:7070" is not an http(s) URL such as https://127.0.0.1:7070
	// trust.platform is SIMULATED but trust.allow_simulated is not true
	// trust.pcrs[0]: "abc" is not a 32, 48 or 64-byte hex value
}

// TestTrustPolicy checks, against a real runtime, that the client refuses
// identities its policy does not accept, before any owner or run request.
func TestTrustPolicy(t *testing.T) {
	env := enclavetest.Start(t)
	ctx := context.Background()
	other := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name string
		opts client.Options
		want string
	}{
		{"simulated not allowed", client.Options{}, "SIMULATED"},
		{"nitro expected", client.Options{AllowSimulated: true, Trust: api.Trust{Platform: "aws-nitro"}}, "trust policy expects aws-nitro"},
		{"another root", client.Options{Trust: api.Trust{Platform: "SIMULATED", AllowSimulated: true, RootFingerprint: other}}, "failed attestation"},
		{"another key", client.Options{Trust: api.Trust{Platform: "SIMULATED", AllowSimulated: true, RootFingerprint: env.RootFingerprint, KeyID: other}}, "the trust policy pins " + other},
		{"another PCR0", client.Options{AllowSimulated: true, Trust: api.Trust{PCRs: map[string][]string{"0": {strings.Repeat("00", 32)}}}}, "failed attestation"},
		{"stale documents", client.Options{AllowSimulated: true, Now: func() time.Time { return time.Now().Add(time.Hour) }}, "failed attestation"},
	} {
		c, err := client.New(env.URL, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		id, err := c.Attest(ctx)
		if err == nil || id != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Attest = %v, %v; want an error mentioning %q", tc.name, id, err, tc.want)
		}
		if c.Cached() != nil {
			t.Errorf("%s: a refused identity was cached", tc.name)
		}
		if tc.name == "simulated not allowed" && !errors.Is(err, attest.ErrSimulated) {
			t.Errorf("refusing SIMULATED: %v does not wrap attest.ErrSimulated", err)
		}
		if tc.name == "another key" && (!errors.Is(err, client.ErrPinnedKey) || !strings.Contains(err.Error(), "Trust.KeyID") || strings.Contains(err.Error(), "--")) {
			t.Errorf("refusing another key: %v does not wrap ErrPinnedKey with a hint", err)
		}
		c.Close()
	}

	// The runtime's own trust block, and pins that match, are accepted.
	c := env.Client(client.Options{})
	id, err := c.Attest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !id.Simulated || !strings.HasPrefix(id.String(), "SIMULATED attestation") {
		t.Fatalf("identity %s", id)
	}
	pinned, err := client.Dial(ctx, env.URL, client.Options{Trust: api.Trust{Platform: "SIMULATED", AllowSimulated: true,
		RootFingerprint: env.RootFingerprint, KeyID: id.KeyID}})
	if err != nil {
		t.Fatalf("pinned to the runtime's own root and key: %v", err)
	}
	pinned.Close()
	// An unreachable runtime says so.
	c2, _ := client.New("http://127.0.0.1:1", client.Options{AllowSimulated: true})
	if _, err := c2.Attest(ctx); !errors.Is(err, client.ErrUnreachable) || !strings.Contains(err.Error(), "runtime at http://127.0.0.1:1 is unreachable") || strings.Contains(err.Error(), "--") {
		t.Fatalf("unreachable runtime: %v", err)
	}
}

// ExampleNewReplicas makes a client of every replica a reference lists; it
// starts on the first and moves between them as they fail or redirect.
func ExampleNewReplicas() {
	ref := &api.Ref{EnclaveURL: "http://10.0.0.1:7070", EnclaveURLs: []string{"http://10.0.0.1:7070", "http://10.0.0.2:7070/", "http://10.0.0.3:7070"}}
	c, err := client.NewReplicas(ref.URLs(), client.Options{})
	fmt.Println(c.URLs(), c.Replica(), err)

	_, err = client.NewReplicas([]string{"http://a:1", "http://a:1/"}, client.Options{})
	fmt.Println(err)
	// Output:
	// [http://10.0.0.1:7070 http://10.0.0.2:7070 http://10.0.0.3:7070] http://10.0.0.1:7070 <nil>
	// runtime URL "http://a:1" is listed twice
}
