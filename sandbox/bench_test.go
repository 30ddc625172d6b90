package sandbox

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"vouch/internal/testbuild"
)

// leaderInput returns the election function's input for n members.
func leaderInput(n int) []byte {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprint(5000+i))
	}
	return []byte(`{"cluster":"demo","node_list":[` + strings.Join(ids, ",") + `]}`)
}

func benchInvoke(b *testing.B, reactor bool, input []byte) {
	mod, err := testbuild.Wasm("./functions/leader", reactor)
	if err != nil {
		b.Fatal(err)
	}
	f, err := engine.Load(context.Background(), mod, limits(5*time.Second, 64))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close(context.Background())
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.Invoke(ctx, input, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvoke measures one call of the built-in leader function: a warm
// reactor call against a fresh command instance, for 1 and 100 members.
func BenchmarkInvoke(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("reactor/members=%d", n), func(b *testing.B) { benchInvoke(b, true, leaderInput(n)) })
		b.Run(fmt.Sprintf("command/members=%d", n), func(b *testing.B) { benchInvoke(b, false, leaderInput(n)) })
	}
}
