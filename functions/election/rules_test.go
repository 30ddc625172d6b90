package main

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/election/outcome"
	"github.com/vouch-dev/vouch/guest"
)

// The rules of docs/ELECTION.md, section 3, quoted word for word, each with
// the test that exercises it. TestRulesAreDocumented fails if a quoted rule
// is no longer written in the doc, so the doc and the code cannot drift
// apart silently (after etcd-io/raft's raft_paper_test.go).
var rules = []struct {
	quote string
	test  func(t *testing.T)
}{
	{"A member counts as alive when a strict majority of members' fresh views include it.", TestElectsByMajorityAndKeepsOffice},
	{"silence does not shrink the majority", testSilenceDoesNotShrinkMajority},
	{"A leader keeps its office while it is alive and renews its lease, so there is no flapping", TestElectsByMajorityAndKeepsOffice},
	{"A leader that has not renewed its lease for 3 × max(lease, view TTL) loses office even while a majority sees it alive, and the next term's pick excludes it", TestStalledLeaderLosesOffice},
	{"which a healthy node under ordinary jitter, a GC pause or a slow runtime call does not", TestHonestLeaderNeverStalls},
	{"When the leader stops being alive by majority, the function moves to term+1 and picks the new leader by policy among the members alive by majority.", TestFailoverWaitsForMajorityAndLease},
	{"If no member is alive by majority, nothing changes: elections stall rather than guess.", testNoMajorityStalls},
	{"The function replaces a leader only after every lease it was granted has run out", TestFailoverWaitsForMajorityAndLease},
	{"a shorter lease granted later (a new configuration) never shortens one granted earlier", TestLeaseShortenedIsNotRetroactive},
	{"A term that keeps its leader carries the old lease's end, also across a restart", TestLaterShorterGrantKeepsEarlierBound},
	{"a step of the runtime's wall clock does not shorten a lease", TestWallClockStepDoesNotMoveLeases},
	{"A leader cut off from its peers is refused renewal even if it still reaches the runtime, so it stops acting.", testPartitionedLeaderNotRenewed},
	{"Exactly one certificate exists per (cluster, term). Asking again returns the same one", TestElectsByMajorityAndKeepsOffice},
	{"After a runtime restart the term sequence continues from stored state and never goes back.", TestTermSurvivesRestart},
	{"The runtime accepts a newer configuration only when it is signed by that same owner.", TestConfigurationUpdates},
	{"A configuration change never changes a term's certificate: a new term starts under the new configuration as soon as the rules allow.", TestConfigChangeNeverReissuesATerm},
	{"If the leader is alive by majority under the new configuration (so still a member) and has not stalled, the new term starts at once and keeps it.", TestConfigChangeStartsTermWhenItMay},
	{"If the new configuration removes the leader, or the leader is not alive, the leader loses office, but only after the leases it was granted have run out", TestConfigRemovesLeader},
	{"Stakes must add up to at most 2^64 − 1", testStakeOverflowRefused},
	{"Open mode registers a new member on first contact (trust on first use)", TestOpenRegistration},
	{"A registered member that sends no view for ten view TTLs stops counting, and its registration is pruned", TestOpenRegistrationsAreBounded},
	{"An open cluster keeps at most 1000 registrations", TestOpenRegistrationsAreBounded},
	{"views from non-members, and views signed with a key that is not the member's", TestRefusesBadViews},
	{"a view that leaves out its own node is malformed", testViewWithoutItself},
	{"a time from before the runtime process started", TestRestartRefusesViewsSignedBefore},
	{"views larger than the cluster's members can need", TestViewSizeBounded},
	{"an attached configuration is only considered when its owner key is the bound owner's and its version is above the stored one, compared before anything is verified", TestCheapChecksComeFirst},
	{"that member's configurations are not verified again for 5 s", TestBadConfigurationThrottled},
	{"the largest submission of a 1000-member cluster", TestInputLimitFitsLargeCluster},
	{"the minority can neither evict a live leader nor keep a dead one", TestMinorityCannotEvictOrKeepCorpse},
	{"fences that term and starts the next one once every lease granted so far ran out", TestFloorAboveStoredTerm},
	{"or with another certificate for that term", TestFloorSameTermOtherBytes},
}

func TestRulesAreDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../docs/ELECTION.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := normalize(string(raw))
	for _, r := range rules {
		if !strings.Contains(doc, normalize(r.quote)) {
			t.Errorf("docs/ELECTION.md no longer says: %q", r.quote)
		}
	}
}

func TestRules(t *testing.T) {
	for _, r := range rules {
		t.Run(r.quote[:min(40, len(r.quote))], r.test)
	}
}

var space = regexp.MustCompile(`\s+`)

func normalize(s string) string { return space.ReplaceAllString(s, " ") }

// Members that say nothing still count in the denominator: two of five
// agreeing is not a majority.
func testSilenceDoesNotShrinkMajority(t *testing.T) {
	h := newHarness(t, cluster.PolicyHighest, "a", "b", "c", "d", "e")
	h.must("a", "a", "b")
	if c := h.must("b", "a", "b"); c.Term != 0 {
		t.Fatalf("two views of five elected a leader: %+v", c)
	}
	if c := h.must("c", "a", "b", "c"); c.Term != 1 || c.Leader != "b" {
		t.Fatalf("three views of five: %+v", c)
	}
}

func testNoMajorityStalls(t *testing.T) {
	h := newHarness(t, cluster.PolicyHighest, "a", "b", "c")
	for _, n := range []string{"a", "b", "c"} {
		h.must(n, "a", "b", "c")
	}
	// Every member now sees only itself: nobody is alive by majority.
	h.tick(2 * time.Second)
	for _, n := range []string{"a", "b"} {
		h.must(n, n)
	}
	h.tick(2 * time.Second)
	if c := h.must("a", "a"); c.Term != 1 || c.Leader != "c" {
		t.Fatalf("a term changed without a majority: %+v", c)
	}
}

func testPartitionedLeaderNotRenewed(t *testing.T) {
	h := newHarness(t, cluster.PolicyHighest, "a", "b", "c")
	for _, n := range []string{"a", "b", "c"} {
		h.must(n, "a", "b", "c")
	}
	// c still reaches the runtime, but a and b no longer see it.
	h.tick(200 * time.Millisecond)
	h.must("a", "a", "b")
	h.must("b", "a", "b")
	if _, err := h.submit("c", "a", "b", "c"); refusal(err) == nil || refusal(err).Code != outcome.LeaseNotRenewed {
		t.Fatalf("a leader without a majority was renewed: %v", err)
	}
	h.tick(1100 * time.Millisecond)
	h.must("a", "a", "b")
	if c := h.must("b", "a", "b"); c.Term != 2 || c.Leader != "b" {
		t.Fatalf("%+v", c)
	}
}

// A configuration whose stakes overflow cannot be signed, so it never
// reaches the runtime.
func testStakeOverflowRefused(t *testing.T) {
	h := newHarness(t, cluster.PolicyStake, "a", "b")
	c := h.cfg.Config
	c.Members[0].Stake, c.Members[1].Stake = 1<<63, 1<<63
	if _, err := cluster.Sign(c, h.owner); err == nil || !strings.Contains(err.Error(), "stakes add up") {
		t.Fatalf("stakes adding up to 2^64: %v", err)
	}
}

// A view signed by its member but leaving itself out is refused.
func testViewWithoutItself(t *testing.T) {
	h := newHarness(t, cluster.PolicyHighest, "a", "b", "c")
	v := cluster.View{Cluster: "demo", Node: "a", Seq: 1, TimeMillis: h.env.t.UnixMilli(), Alive: []string{"b", "c"}, Key: h.keys["a"].Public().(ed25519.PublicKey)}
	in, _ := json.Marshal(Input{Config: h.cfg, View: &cluster.SignedView{View: v, Signature: ed25519.Sign(h.keys["a"], v.Message())}})
	if _, err := h.env.run(in); err == nil || !strings.Contains(err.Error(), "itself") {
		t.Fatalf("a view without its own node: %v", err)
	}
}

// A stored view's memo is used only for the bytes it was decoded from, and
// its indexes only for the member list they were computed for.
func TestSeenMemoFollowsStateAndMembers(t *testing.T) {
	e := newEnv()
	vs := &views{cluster: "memo", Latest: map[string]viewSeen{}}
	put := func(alive ...string) {
		e.put(guest.Volatile, "view/memo/a", viewSeen{Seq: 1, RecvMs: 5, Alive: alive}.encode())
	}
	tally := func(all ...string) []int32 {
		vs.Latest = map[string]viewSeen{}
		loadSeen(&txEnv{base: e}, vs, "a")
		gen, pos := indexMembers(all)
		return vs.Latest["a"].indexes(gen, pos)
	}
	put("a", "b", "c")
	if got := tally("a", "b", "c"); !slices.Equal(got, []int32{0, 1, 2}) {
		t.Fatalf("indexes %v, want [0 1 2]", got)
	}
	if got := tally("b", "c", "d"); !slices.Equal(got, []int32{0, 1}) {
		t.Fatalf("after the member list changed: indexes %v, want [0 1]", got)
	}
	put("c")
	if got := tally("b", "c", "d"); !slices.Equal(got, []int32{1}) {
		t.Fatalf("after the stored view changed: indexes %v, want [1]", got)
	}
	if got := tally("a", "b", "c"); !slices.Equal(got, []int32{2}) {
		t.Fatalf("back to the first member list: indexes %v, want [2]", got)
	}
	e.del(guest.Volatile, "view/memo/a")
	if got := tally("a", "b", "c"); len(got) != 0 {
		t.Fatalf("a deleted view still counts: %v", got)
	}
}

// The memos stay under maxMemoBytes, however many large views there are.
func TestSeenMemosAreBounded(t *testing.T) {
	e := newEnv()
	vs := &views{cluster: "bound", Latest: map[string]viewSeen{}}
	id := strings.Repeat("m", 60)
	alive := make([]string, 0, 1<<14)
	for len(alive) < cap(alive) {
		alive = append(alive, id)
	}
	alive[0] = "a"
	big := viewSeen{Seq: 1, RecvMs: 5, Alive: alive}.encode()
	for i := range 3 * maxMemoBytes / len(big) {
		node := fmt.Sprintf("n%d", i)
		e.put(guest.Volatile, "view/bound/"+node, big)
		loadSeen(&txEnv{base: e}, vs, node)
		if memoBytes > maxMemoBytes {
			t.Fatalf("after %d views of %d bytes: %d bytes of memos, more than %d", i+1, len(big), memoBytes, maxMemoBytes)
		}
		gen, pos := indexMembers([]string{"a"})
		if got := vs.Latest[node].indexes(gen, pos); !slices.Equal(got, []int32{0}) {
			t.Fatalf("view %d: indexes %v", i, got)
		}
	}
}
