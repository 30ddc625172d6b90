package seal

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"
)

// benchInput is a 2 KiB input, about a 100-member list.
var benchInput = bytes.Repeat([]byte(`{"id":1234,"w":5}`), 2048/17+1)[:2048]

func BenchmarkSealInput(b *testing.B) {
	k := mustKey(b)
	reply := mustKey(b).PublicKey()
	b.SetBytes(int64(len(benchInput)))
	for b.Loop() {
		if _, err := SealInput(k.PublicKey(), testFunction, testChecksum, benchInput, &InputOptions{BootID: testBoot, ReplyKey: reply}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenInput(b *testing.B) {
	k := mustKey(b)
	reply := mustKey(b).PublicKey()
	now := time.Now()
	msgs := make([][]byte, 512)
	for i := range msgs {
		msgs[i] = sealAt(b, k.PublicKey(), benchInput, reply, now)
	}
	cache := testCache()
	b.SetBytes(int64(len(benchInput)))
	i := 0
	for b.Loop() {
		if i == len(msgs) {
			b.StopTimer()
			cache, i = testCache(), 0
			b.StartTimer()
		}
		if _, err := k.OpenInput(testFunction, testChecksum, msgs[i], cache, now); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkSealOutput(b *testing.B) {
	reply := mustKey(b).PublicKey()
	digest := sha256.Sum256(benchInput)
	b.SetBytes(int64(len(benchInput)))
	for b.Loop() {
		if _, err := SealOutput(reply, testFunction, testChecksum, digest, benchInput); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenOutput(b *testing.B) {
	reply := mustKey(b)
	digest := sha256.Sum256(benchInput)
	sealed, err := SealOutput(reply.PublicKey(), testFunction, testChecksum, digest, benchInput)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(benchInput)))
	for b.Loop() {
		if _, err := reply.OpenOutput(testFunction, testChecksum, digest, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplayCacheAdmit measures recording an input in a full cache.
func BenchmarkReplayCacheAdmit(b *testing.B) {
	const capacity = 100_000
	c := NewReplayCache(1000*time.Hour, capacity)
	now := t0.UnixMilli()
	for i := range capacity {
		_ = c.admit(encOf(i), now+int64(i), now)
	}
	i := capacity
	for b.Loop() {
		_ = c.admit(encOf(i), now+int64(i), now)
		i++
	}
}
