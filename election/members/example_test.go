package members_test

import (
	"fmt"

	"github.com/vouch-dev/vouch/election/members"
)

func Example() {
	set, err := members.New([]string{"5002", "5000", "10000"})
	if err != nil {
		panic(err)
	}
	// All IDs are numbers, so they compare numerically.
	fmt.Println(set.IDs(), "leader:", set.Highest())
	// Output: [5000 5002 10000] leader: 10000
}

func ExampleDigest() {
	// SHA-256 of "5000\n5001\n5002": printf '5000\n5001\n5002' | sha256sum
	fmt.Println(members.Digest([]string{"5000", "5001", "5002"}))
	// Output: b0b68d797edfd8f4eabb59e224a78aa3866e6fb5075aaafa3f1446faf156a1f8
}
