package chaos

import (
	"strings"
	"testing"
	"time"
)

func TestLeadershipsAndOverlaps(t *testing.T) {
	at := func(ms int) string {
		return time.Date(2026, 1, 1, 0, 0, 0, ms*int(time.Millisecond), time.UTC).Format(time.RFC3339Nano)
	}
	line := func(ms int, msg string, seq int) string {
		return `{"time":"` + at(ms) + `","level":"INFO","msg":"` + msg + `","node":"x","seq":` + string(rune('0'+seq)) + "}\n"
	}
	end := time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC)
	// a leads 0-1000 ms (stops), then from 3000 until killed at 3500.
	a := line(0, StartedMsg, 1) + "not json: vouch: warning\n" + line(1000, StoppedMsg, 0) +
		line(3000, StartedMsg, 3) + line(3500, KilledMsg, 0)
	// b leads from 950 ms (50 ms overlap with a) and never stops.
	b := `{"time":"` + at(950) + `","msg":"` + StartedMsg + `","seq":2}` + "\n"
	ia, err := Leaderships("a", strings.NewReader(a), end)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := Leaderships("b", strings.NewReader(b), end)
	if err != nil {
		t.Fatal(err)
	}
	if len(ia) != 2 || !ia[1].Killed || ia[0].Seq != 1 || len(ib) != 1 || !ib[0].End.Equal(end) {
		t.Fatalf("intervals %+v %+v", ia, ib)
	}
	ov := Overlaps(append(ia, ib...))
	if len(ov) != 2 || ov[0].For != 500*time.Millisecond || ov[1].For != 50*time.Millisecond {
		t.Fatalf("overlaps %v", ov)
	}
	if Overlaps(ia) != nil {
		t.Fatal("a node overlaps with itself")
	}

	// c's lease ran out at 2000 ms; its loop logged the stop at 2300.
	c := line(1500, StartedMsg, 4) + `{"time":"` + at(2300) + `","msg":"` + StoppedMsg + `","lease_end":"` + at(2000) + `"}` + "\n"
	ic, err := Leaderships("c", strings.NewReader(c), end)
	if err != nil {
		t.Fatal(err)
	}
	if len(ic) != 1 || !ic[0].End.Equal(time.Date(2026, 1, 1, 0, 0, 2, 0, time.UTC)) {
		t.Fatalf("a stop after the lease end: intervals %+v, want the end at the lease end", ic)
	}
}
