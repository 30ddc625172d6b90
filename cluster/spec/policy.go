package spec

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/vouch-dev/vouch/election/members"
	"github.com/vouch-dev/vouch/internal/canon"
)

// FairTag starts the message the fair and stake policies hash.
const FairTag = "vouch/fair/v1"

// Pick chooses the leader among alive (member IDs, in member order) by the
// configuration's policy. secret is the runtime's secret for the fair and
// stake policies; membersDigest and term are what the choice is bound to,
// so that one term has one outcome.
func Pick(c *Config, alive *members.Set, secret []byte, term uint64) (string, error) {
	ids := alive.IDs()
	if len(ids) == 0 {
		return "", fmt.Errorf("no alive member to choose from")
	}
	switch c.Policy {
	case PolicyHighest:
		return alive.Highest(), nil
	case PolicyLowest:
		return alive.Lowest(), nil
	case PolicyFair:
		i := uniform(secret, c.Cluster, alive.Digest(), term, uint64(len(ids)))
		return ids[i], nil
	case PolicyStake:
		weights := make([]uint64, len(ids))
		var total uint64
		for i, id := range ids {
			w := uint64(1)
			if m := c.Member(id); m != nil && m.Stake > 0 {
				w = m.Stake
			}
			weights[i] = w
			if total+w < total {
				return "", fmt.Errorf("stakes overflow")
			}
			total += w
		}
		u := uniform(secret, c.Cluster, alive.Digest(), term, total)
		for i, w := range weights {
			if u < w {
				return ids[i], nil
			}
			u -= w
		}
	}
	return "", fmt.Errorf("unknown policy %q", c.Policy)
}

// uniform returns a number in [0, n) drawn from
// HMAC-SHA256(secret, tag ‖ cluster ‖ members_digest ‖ term ‖ counter)
// by rejection sampling: each HMAC yields four 64-bit candidates; a
// candidate at or above the largest multiple of n is rejected, so that
// every result is equally likely.
func uniform(secret []byte, cluster, membersDigest string, term, n uint64) uint64 {
	if n == 1 {
		return 0
	}
	limit := ^uint64(0) - (^uint64(0)%n+1)%n // largest multiple of n, minus one
	for counter := uint64(0); ; counter++ {
		mac := hmac.New(sha256.New, secret)
		mac.Write(canon.New(FairTag).String(cluster).String(membersDigest).Uint64(term).Uint64(counter).Message())
		sum := mac.Sum(nil)
		for i := 0; i < 4; i++ {
			x := binary.BigEndian.Uint64(sum[8*i:])
			if x <= limit {
				return x % n
			}
		}
	}
}
