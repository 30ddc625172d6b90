package sandbox

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// time_monotonic returns the time since the runtime process's origin: each
// reading lies between the host's own readings taken just before and just
// after the call, in both modes, and readings never go back.
func TestTimeMonotonic(t *testing.T) {
	inBothModes(t, func(t *testing.T, f *Function) {
		var last int64
		for i := 0; i < 3; i++ {
			before := int64(time.Since(monotonicOrigin))
			res, err := f.Invoke(context.Background(), []byte("mono"), nil)
			after := int64(time.Since(monotonicOrigin))
			if err != nil {
				t.Fatal(err)
			}
			got, err := strconv.ParseInt(string(res.Output), 10, 64)
			if err != nil {
				t.Fatalf("output %q: %v", res.Output, err)
			}
			if got < before || got > after {
				t.Fatalf("time_monotonic = %d, outside [%d, %d] read around the call", got, before, after)
			}
			if got < last {
				t.Fatalf("time_monotonic went back: %d after %d", got, last)
			}
			last = got
		}
	})
}
