package canon_test

import (
	"fmt"

	"github.com/vouch-dev/vouch/internal/canon"
)

func Example() {
	msg := canon.New("demo/v1").String("hi").Uint64(7).Message()
	fmt.Printf("%x\n", msg)
	// Output: 0000000764656d6f2f76310000000268690000000000000007
}
