package main

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/election/members"
)

// largeClusterMembers is the cluster size max_input_bytes is sized for
// (docs/ELECTION.md, "Limits").
const largeClusterMembers = 1000

// maxSubmission returns the largest submission of a cluster of n members:
// IDs of the longest length, stakes of the most digits that still add up,
// the configuration attached, and a view listing every member.
func maxSubmission(t testing.TB, n int) []byte {
	owner := key(200)
	c := cluster.Config{Cluster: strings.Repeat("c", 64), Version: math.MaxUint64 / 2, Owner: owner.Public().(ed25519.PublicKey), Policy: cluster.PolicyStake,
		LeaseMillis: 600_000, ViewTTLMillis: 600_000}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%0*d", members.MaxIDLen, i)
		c.Members = append(c.Members, cluster.Member{ID: ids[i], Key: key(byte(i)).Public().(ed25519.PublicKey), Stake: math.MaxUint64 / uint64(n)})
	}
	sc, err := cluster.Sign(c, owner)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := cluster.SignView(cluster.View{Cluster: c.Cluster, Node: ids[0], Seq: math.MaxUint64, TimeMillis: time.Now().UnixMilli(), Alive: ids}, key(0))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(Input{Config: sc, View: sv})
	return b
}

// max_input_bytes fits the largest submission of a cluster of
// largeClusterMembers members, and not much more: every byte the function
// accepts is a byte a liar can make it parse.
func TestInputLimitFitsLargeCluster(t *testing.T) {
	raw, err := os.ReadFile("vouch.json")
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		Limits struct {
			MaxInputBytes int `json:"max_input_bytes"`
		} `json:"limits"`
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	limit := manifest.Limits.MaxInputBytes
	need := len(maxSubmission(t, largeClusterMembers))
	t.Logf("largest submission of %d members: %d bytes; max_input_bytes %d", largeClusterMembers, need, limit)
	if limit < need {
		t.Fatalf("max_input_bytes %d is below %d, the largest submission of a %d-member cluster", limit, need, largeClusterMembers)
	}
	if limit > 2*need {
		t.Fatalf("max_input_bytes %d is more than twice %d, the largest submission of a %d-member cluster", limit, need, largeClusterMembers)
	}
}
