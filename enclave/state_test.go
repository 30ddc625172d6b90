package enclave_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/internal/harness/testbuild"
)

func deployStateFn(t *testing.T, env *enclavetest.Env) (*client.Client, client.FunctionRef) {
	t.Helper()
	mod, err := testbuild.Wasm("./enclave/testdata/statefn", true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.New(mod, []byte(`{"allow_plaintext_input":true,"limits":{"timeout":"500ms"}}`))
	if err != nil {
		t.Fatal(err)
	}
	c := env.Client(client.Options{Plaintext: true})
	d, err := c.Deploy(ctx, b, "statefn")
	if err != nil {
		t.Fatal(err)
	}
	return c, client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: env.Owner}
}

func call(t *testing.T, c *client.Client, ref client.FunctionRef, in string) string {
	t.Helper()
	res, err := c.Run(ctx, ref, []byte(in))
	if err != nil {
		t.Fatalf("%s: %v", in, err)
	}
	return string(res.Output)
}

func TestStateIsTransactionalAndDurable(t *testing.T) {
	env := enclavetest.Start(t)
	c, ref := deployStateFn(t, env)
	if got := call(t, c, ref, "incr"); got != "1" {
		t.Fatalf("first counter value %s", got)
	}
	call(t, c, ref, "put:k=committed")
	call(t, c, ref, "vput:v=volatile")
	// Writes of failed invocations are rolled back: error, trap, timeout.
	for _, in := range []string{"put-then-fail:k=lost", "put-then-panic:k=lost", "put-then-spin:k=lost"} {
		if _, err := c.Run(ctx, ref, []byte(in)); err == nil {
			t.Fatalf("%s succeeded", in)
		}
		if got := call(t, c, ref, "get:k"); got != "committed" {
			t.Fatalf("after %s: k = %q, want the committed value", in, got)
		}
	}
	if got := call(t, c, ref, "incr"); got != "2" {
		t.Fatalf("counter after failed increments: %s, want 2", got)
	}
	if got := call(t, c, ref, "vget:v"); got != "volatile" {
		t.Fatalf("volatile value %q", got)
	}
	// A restart keeps durable state and counters, and loses volatile state.
	env = env.Restart()
	c = env.Client(client.Options{Plaintext: true})
	if got := call(t, c, ref, "get:k"); got != "committed" {
		t.Fatalf("durable value after restart: %q", got)
	}
	if got := call(t, c, ref, "vget:v"); got != "<none>" {
		t.Fatalf("volatile value after restart: %q", got)
	}
	if got := call(t, c, ref, "incr"); got != "3" {
		t.Fatalf("counter after restart: %s, want 3", got)
	}
	if a, b := call(t, c, ref, "rand"), call(t, c, ref, "rand"); a == b || len(a) != 32 {
		t.Fatalf("random bytes %q %q", a, b)
	}
	now, _ := strconv.ParseInt(call(t, c, ref, "now"), 10, 64)
	if d := time.Since(time.Unix(now, 0)); d < -time.Minute || d > time.Minute {
		t.Fatalf("runtime clock is off by %v", d)
	}
}

// Concurrent invocations of a stateful function are serialised: every
// increment is seen, none twice.
func TestStateIsSerializable(t *testing.T) {
	env := enclavetest.Start(t)
	c, ref := deployStateFn(t, env)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]bool{}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				res, err := c.Run(ctx, ref, []byte("incr"))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[string(res.Output)] {
					t.Errorf("counter value %s returned twice", res.Output)
				}
				seen[string(res.Output)] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if got := call(t, c, ref, "get:last"); got != "80" {
		t.Fatalf("last = %s, want 80", got)
	}
}
