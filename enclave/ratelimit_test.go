package enclave

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := newLimiter(10, 5)
	now := time.Unix(0, 0)
	for i := 0; i < 5; i++ {
		if ok, _ := l.allow("a", now); !ok {
			t.Fatalf("burst refused at %d", i)
		}
	}
	ok, wait := l.allow("a", now)
	if ok || wait <= 0 || wait > 100*time.Millisecond {
		t.Fatalf("over the burst: ok=%v wait=%v", ok, wait)
	}
	// Another token is not affected.
	if ok, _ := l.allow("b", now); !ok {
		t.Fatal("one token's flood limited another")
	}
	// Tokens refill at the rate.
	if ok, _ := l.allow("a", now.Add(100*time.Millisecond)); !ok {
		t.Fatal("no refill after 100ms at 10/s")
	}
	var nilLimiter *limiter
	if ok, _ := nilLimiter.allow("x", now); !ok {
		t.Fatal("a disabled limiter refused")
	}
}
