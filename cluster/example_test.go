package cluster_test

import (
	"crypto/ed25519"
	"fmt"

	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/election/members"
)

func Example() {
	seed := func(b byte) ed25519.PrivateKey {
		s := make([]byte, 32)
		for i := range s {
			s[i] = b
		}
		return ed25519.NewKeyFromSeed(s)
	}
	owner, a, b := seed(1), seed(2), seed(3)
	cfg := cluster.Config{
		Cluster: "demo", Version: 1, Owner: owner.Public().(ed25519.PublicKey), Policy: cluster.PolicyFair,
		LeaseMillis: 1000, ViewTTLMillis: 1000,
		Members: []cluster.Member{
			{ID: "b", Key: b.Public().(ed25519.PublicKey)},
			{ID: "a", Key: a.Public().(ed25519.PublicKey)},
		},
	}
	signed, err := cluster.Sign(cfg, owner)
	if err != nil {
		panic(err)
	}
	fmt.Println("configuration verifies:", signed.Verify() == nil)

	view, _ := cluster.SignView(cluster.View{Cluster: "demo", Node: "a", Seq: 1, TimeMillis: 1, Alive: []string{"b", "a"}}, a)
	fmt.Println("view verifies:", view.Verify() == nil, "alive:", view.View.Alive)

	// The fair policy draws from a secret only the runtime knows; the same
	// term always gives the same leader.
	alive, _ := members.New([]string{"a", "b"})
	first, _ := cluster.Pick(&signed.Config, alive, []byte("runtime secret"), 7)
	again, _ := cluster.Pick(&signed.Config, alive, []byte("runtime secret"), 7)
	fmt.Println("asking again rerolls:", first != again)
	// Output:
	// configuration verifies: true
	// view verifies: true alive: [a b]
	// asking again rerolls: false
}
