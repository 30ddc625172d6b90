package cluster

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/election/members"
)

func key(b byte) ed25519.PrivateKey {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = b
	}
	return ed25519.NewKeyFromSeed(seed)
}

func config(policy string, ids ...string) Config {
	c := Config{Cluster: "demo", Version: 1, Owner: key(100).Public().(ed25519.PublicKey), Policy: policy, LeaseMillis: 1000, ViewTTLMillis: 1000}
	for i, id := range ids {
		c.Members = append(c.Members, Member{ID: id, Key: key(byte(i + 1)).Public().(ed25519.PublicKey), Stake: uint64(i + 1)})
	}
	return c
}

func TestSignVerifyParse(t *testing.T) {
	s, err := Sign(config(PolicyFair, "b", "a"), key(100))
	if err != nil {
		t.Fatal(err)
	}
	if s.Config.Members[0].ID != "a" {
		t.Fatal("members not normalised into member order")
	}
	b, _ := json.Marshal(s)
	p, err := ParseSigned(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.Config.Digest() != s.Config.Digest() {
		t.Fatal("digest changed through JSON")
	}
	// Any change breaks the signature.
	for _, mut := range []func(*Signed){
		func(s *Signed) { s.Config.Version++ },
		func(s *Signed) { s.Config.Policy = PolicyHighest },
		func(s *Signed) { s.Config.Members[0].Stake = 99 },
		func(s *Signed) { s.Config.Open = true },
		func(s *Signed) { s.Config.LeaseMillis++ },
		func(s *Signed) { s.Signature[0] ^= 1 },
	} {
		c := *p
		c.Config.Members = append([]Member(nil), p.Config.Members...)
		c.Signature = append([]byte(nil), p.Signature...)
		mut(&c)
		if err := c.Verify(); !errors.Is(err, ErrSignature) {
			t.Fatalf("tampered configuration: %v", err)
		}
	}
	if _, err := Sign(config(PolicyFair, "a"), key(7)); err == nil {
		t.Fatal("signed by a key that is not the owner")
	}
}

func TestConfigChecks(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"no version":   func(c *Config) { c.Version = 0 },
		"bad policy":   func(c *Config) { c.Policy = "random" },
		"no members":   func(c *Config) { c.Members = nil },
		"bad cluster":  func(c *Config) { c.Cluster = "a b" },
		"short key":    func(c *Config) { c.Members[0].Key = []byte{1} },
		"tiny lease":   func(c *Config) { c.LeaseMillis = 1 },
		"duplicate id": func(c *Config) { c.Members = append(c.Members, c.Members[0]) },
		"bad owner":    func(c *Config) { c.Owner = nil },
		"stake overflow": func(c *Config) {
			c.Members[0].Stake, c.Members[1].Stake = 1<<63, 1<<63
		},
		"stake overflow by implicit 1": func(c *Config) {
			c.Members[0].Stake, c.Members[1].Stake = math.MaxUint64, 0
		},
	} {
		c := config(PolicyHighest, "a", "b")
		mut(&c)
		if err := c.Check(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Stakes may add up to exactly the largest uint64, not one more: a total
// that overflows would make the stake draw fail at every election.
func TestStakeTotal(t *testing.T) {
	c := config(PolicyStake, "a", "b")
	c.Members[0].Stake, c.Members[1].Stake = math.MaxUint64-1, 1
	if err := c.Check(); err != nil {
		t.Fatalf("total of exactly 2^64-1 refused: %v", err)
	}
	c.Members[1].Stake = 2
	err := c.Check()
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "stakes add up") {
		t.Fatalf("overflowing total: %v", err)
	}
	if _, err := Sign(c, key(100)); err == nil {
		t.Fatal("signed a configuration whose stakes overflow")
	}
}

// A view must list its own node among the alive.
func TestViewListsItself(t *testing.T) {
	if _, err := SignView(View{Cluster: "demo", Node: "a", Seq: 1, TimeMillis: 1, Alive: []string{"b", "c"}}, key(1)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "itself") {
		t.Fatalf("view without its own node signed: %v", err)
	}
	// Signed by hand, it does not verify either.
	v := View{Cluster: "demo", Node: "a", Seq: 1, TimeMillis: 1, Alive: []string{"b"}, Key: key(1).Public().(ed25519.PublicKey)}
	sv := SignedView{View: v, Signature: ed25519.Sign(key(1), v.Message())}
	if err := sv.Verify(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("hand-signed view without its own node verified: %v", err)
	}
}

func TestViews(t *testing.T) {
	sv, err := SignView(View{Cluster: "demo", Node: "a", Seq: 1, TimeMillis: 1, Alive: []string{"b", "a"}}, key(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := sv.Verify(); err != nil {
		t.Fatal(err)
	}
	if sv.View.Alive[0] != "a" {
		t.Fatal("alive not in member order")
	}
	forged := *sv
	forged.View.Alive = []string{"a"}
	if err := forged.Verify(); !errors.Is(err, ErrSignature) {
		t.Fatalf("changed view verified: %v", err)
	}
	other := *sv
	other.View.Key = key(2).Public().(ed25519.PublicKey)
	if err := other.Verify(); !errors.Is(err, ErrSignature) {
		t.Fatalf("view under another key verified: %v", err)
	}
}

// The fair policy picks every alive member equally often, and the stake
// policy in proportion to stake: a chi-squared test at p = 0.001.
func TestPolicyDistributions(t *testing.T) {
	ids := []string{"a", "b", "c", "d", "e"}
	set, _ := members.New(ids)
	secret := []byte("a secret only the runtime knows.")
	for _, tc := range []struct {
		policy  string
		weights []float64
	}{
		{PolicyFair, []float64{1, 1, 1, 1, 1}},
		{PolicyStake, []float64{1, 2, 3, 4, 5}},
	} {
		c := config(tc.policy, ids...)
		counts := map[string]int{}
		const terms = 20000
		for term := uint64(1); term <= terms; term++ {
			l, err := Pick(&c, set, secret, term)
			if err != nil {
				t.Fatal(err)
			}
			counts[l]++
		}
		var total, chi float64
		for _, w := range tc.weights {
			total += w
		}
		for i, id := range ids {
			want := terms * tc.weights[i] / total
			d := float64(counts[id]) - want
			chi += d * d / want
		}
		// 4 degrees of freedom: P(chi2 > 18.47) = 0.001.
		if chi > 18.47 {
			t.Errorf("%s: counts %v are not as expected (chi2 = %.1f)", tc.policy, counts, chi)
		}
		// The same inputs always give the same leader: asking again does
		// not reroll.
		a, _ := Pick(&c, set, secret, 7)
		b, _ := Pick(&c, set, secret, 7)
		if a != b {
			t.Errorf("%s: the same term gave %s and %s", tc.policy, a, b)
		}
	}
	c := config(PolicyHighest, ids...)
	if l, _ := Pick(&c, set, nil, 1); l != "e" {
		t.Errorf("highest = %s", l)
	}
	c.Policy = PolicyLowest
	if l, _ := Pick(&c, set, nil, 1); l != "a" {
		t.Errorf("lowest = %s", l)
	}
}

func FuzzParseSigned(f *testing.F) {
	s, _ := Sign(config(PolicyStake, "a", "b"), key(100))
	b, _ := json.Marshal(s)
	f.Add(b)
	f.Add([]byte(`{"config":{},"signature":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseSigned(data)
		if err != nil {
			return
		}
		if err := p.Verify(); err != nil {
			t.Fatalf("parsed but does not verify: %v", err)
		}
	})
}

func FuzzViewVerify(f *testing.F) {
	sv, _ := SignView(View{Cluster: "demo", Node: "a", Seq: 1, TimeMillis: 1, Alive: []string{"a"}}, key(1))
	b, _ := json.Marshal(sv)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var v SignedView
		if json.Unmarshal(data, &v) != nil {
			return
		}
		if v.Verify() == nil && !ed25519.Verify(v.View.Key, v.View.Message(), v.Signature) {
			t.Fatal(fmt.Sprintf("verified a view whose signature is wrong: %+v", v))
		}
	})
}
