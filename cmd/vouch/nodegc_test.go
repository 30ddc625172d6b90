package main

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestTuneNodeGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)

	t.Setenv("GOGC", "200") // the operator's choice wins
	tuneNodeGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, the GC target became %d; want it left alone", got)
	}

	t.Setenv("GOGC", "")
	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
	tuneNodeGC()
	if got := debug.SetGCPercent(100); got != nodeGCPercent {
		t.Errorf("without GOGC, the GC target is %d; want %d", got, nodeGCPercent)
	}
}
