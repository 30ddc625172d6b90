package client

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/vouch-dev/vouch/api"
)

// BenchmarkDecodeRunResult compares encoding/json with the hand-written
// decoder of the run answer (100-member leader output).
func BenchmarkDecodeRunResult(b *testing.B) {
	data := sampleRunJSON(b, func(r *api.RunResult) { r.Output = bytes.Repeat([]byte("x"), 820) })
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var res api.RunResult
			if err := json.Unmarshal(data, &res); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var res api.RunResult
			if err := decodeRunResult(data, &res); err != nil {
				b.Fatal(err)
			}
		}
	})
}
