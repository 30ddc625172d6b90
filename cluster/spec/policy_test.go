package spec

import (
	"math"
	"testing"
)

func TestUniformEdgeCases(t *testing.T) {
	for _, n := range []uint64{1, 2, 3, 1 << 63, math.MaxUint64} {
		for term := uint64(0); term < 50; term++ {
			if v := uniform([]byte("k"), "c", "d", term, n); v >= n {
				t.Fatalf("uniform(n=%d) = %d", n, v)
			}
		}
	}
}
