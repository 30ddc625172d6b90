//go:build !wasip1

package strictjson_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/internal/strictjson"
)

// benchView is a signed view listing 100 members, as a node submits it.
func benchView(b *testing.B) []byte {
	node := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	var alive []string
	for i := range 100 {
		alive = append(alive, fmt.Sprintf("n%03d", i))
	}
	sv, err := cluster.SignView(cluster.View{Cluster: "c", Node: "n000", Seq: 9, TimeMillis: 5, Alive: alive}, node)
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := json.Marshal(sv)
	return raw
}

// BenchmarkView compares a view's decoding by encoding/json alone (what
// the guest did before), the compact strict path and json/v2.
func BenchmarkView(b *testing.B) {
	raw := benchView(b)
	b.Run("v1", func(b *testing.B) {
		for b.Loop() {
			var sv cluster.SignedView
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&sv); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("compact", func(b *testing.B) {
		for b.Loop() {
			var sv cluster.SignedView
			if err := strictjson.UnmarshalCompact(raw, &sv); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("v2", func(b *testing.B) {
		for b.Loop() {
			var sv cluster.SignedView
			if err := strictjson.UnmarshalV2(raw, &sv); err != nil {
				b.Fatal(err)
			}
		}
	})
}
