package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestDemo(t *testing.T) {
	for _, views := range []bool{false, true} {
		var out bytes.Buffer
		res, err := Run(context.Background(), Options{Nodes: 3, Views: views, Out: &out, ConvergeWithin: 15 * time.Second})
		if err != nil {
			t.Fatalf("views=%v: %v\n%s", views, err, out.String())
		}
		if res.Leader == "" || res.NewLeader == "" || res.Leader == res.NewLeader || res.NewSeq <= res.Seq {
			t.Fatalf("views=%v: result %+v", views, res)
		}
		if !strings.Contains(out.String(), "SIMULATED") {
			t.Fatal("the demo does not say its attestation is SIMULATED")
		}
		if !views && res.Leader != highestOf(res.NodeNames) {
			t.Fatalf("the original policy elected %s, not the highest port", res.Leader)
		}
	}
}

func highestOf(names []string) string { return highest(names) }

func TestDemoNeedsTwoNodes(t *testing.T) {
	if _, err := Run(context.Background(), Options{Nodes: 1, Out: &bytes.Buffer{}}); err == nil {
		t.Fatal("a one-node demo ran")
	}
}
