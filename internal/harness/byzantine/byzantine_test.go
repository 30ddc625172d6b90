package byzantine

import (
	"context"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/cluster"
)

// TestByzantine runs 5 honest members and 2 liars (7 members: alive needs
// 4 views) through every attack and fails if any property is violated.
func TestByzantine(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 25 s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // generous: a loaded machine under the race detector
	defer cancel()
	rep, err := Run(ctx, t, Options{Honest: 5, Liars: 2, Policy: cluster.PolicyFair, Duration: 12 * time.Second, Seed: 5, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s\n%s", rep, rep.Notes())
	check(t, rep)
}
