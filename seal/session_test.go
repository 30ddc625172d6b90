package seal

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"
)

func newTestSession(t testing.TB, k *PrivateKey) *Session {
	t.Helper()
	s, err := NewSession(k.PublicKey(), testFunction, testChecksum, testBoot)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSessionRoundTrip(t *testing.T) {
	k := mustKey(t)
	s := newTestSession(t, k)
	sessions, cache := NewSessionCache(0), testCache()
	for i, input := range [][]byte{[]byte("first"), nil, bytes.Repeat([]byte("x"), 10000)} {
		msg, counter, err := s.Seal(input, &SessionInputOptions{SealOutput: i != 1, IssuedAt: t0})
		if err != nil {
			t.Fatal(err)
		}
		if counter != uint64(i) || len(msg) != SessionOverhead+len(input) {
			t.Fatalf("message %d: counter %d, %d bytes for a %d-byte input", i, counter, len(msg), len(input))
		}
		in, err := k.OpenSessionInput(testFunction, testChecksum, msg, sessions, cache, t0)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(in.Input, input) || !in.IssuedAt.Equal(t0) || !bytes.Equal(in.BootID, testBoot) || in.ReplyKey != nil || in.SessionReply() != (i != 1) {
			t.Fatalf("message %d opened as %+v", i, in)
		}
		sum := sha256.Sum256(input)
		sealed, err := in.SealSessionOutput(sum, []byte("output"))
		if err != nil {
			t.Fatal(err)
		}
		if out, err := s.OpenOutput(counter, sum, sealed); err != nil || string(out) != "output" {
			t.Fatalf("output: %q %v", out, err)
		}
		// An output opens only as the answer to its own input and counter.
		if _, err := s.OpenOutput(counter+1, sum, sealed); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("output under another counter: %v", err)
		}
		if _, err := s.OpenOutput(counter, sha256.Sum256([]byte("other")), sealed); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("output for another input: %v", err)
		}
	}
	if sessions.Len() != 1 {
		t.Fatalf("cache holds %d sessions, want 1", sessions.Len())
	}
}

// Concurrent requests arrive in any order: every message opens by itself.
func TestSessionMessagesOpenInAnyOrder(t *testing.T) {
	k := mustKey(t)
	s := newTestSession(t, k)
	const n = 64
	msgs := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg, c, err := s.Seal([]byte{byte(i)}, &SessionInputOptions{IssuedAt: t0})
			if err != nil {
				t.Error(err)
				return
			}
			msgs[c] = msg
		}()
	}
	wg.Wait()
	sessions, cache := NewSessionCache(0), testCache()
	seen := map[byte]bool{}
	for i := n - 1; i >= 0; i-- {
		in, err := k.OpenSessionInput(testFunction, testChecksum, msgs[i], sessions, cache, t0)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		seen[in.Input[0]] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct inputs of %d", len(seen), n)
	}
}

func TestSessionRefuses(t *testing.T) {
	k := mustKey(t)
	s := newTestSession(t, k)
	msg, _, err := s.Seal([]byte("input"), &SessionInputOptions{IssuedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	open := func(sessions *SessionCache, cache *ReplayCache, fid, sum string, m []byte) error {
		_, err := k.OpenSessionInput(fid, sum, m, sessions, cache, t0)
		return err
	}
	sessions, cache := NewSessionCache(0), testCache()
	if err := open(sessions, cache, testFunction, testChecksum, msg); err != nil {
		t.Fatal(err)
	}
	if err := open(sessions, cache, testFunction, testChecksum, msg); !errors.Is(err, ErrReplay) {
		t.Errorf("replay: %v", err)
	}
	// A replay is refused even by a runtime that forgot the session's
	// keys: the replay cache, not the session cache, holds that state.
	if err := open(NewSessionCache(0), cache, testFunction, testChecksum, msg); !errors.Is(err, ErrReplay) {
		t.Errorf("replay after eviction: %v", err)
	}
	// The session is cached for testFunction: another function's endpoint
	// must derive its own keys, and fail.
	if err := open(sessions, testCache(), "other-function", testChecksum, msg); !errors.Is(err, ErrDecrypt) {
		t.Errorf("another function: %v", err)
	}
	if err := open(sessions, testCache(), testFunction, otherSum, msg); !errors.Is(err, ErrDecrypt) {
		t.Errorf("another checksum: %v", err)
	}
	other := NewReplayCache(0, 0)
	other.bootID = bytes.Repeat([]byte{0xb1}, BootIDSize)
	if err := open(NewSessionCache(0), other, testFunction, testChecksum, msg); !errors.Is(err, ErrStaleBoot) {
		t.Errorf("another boot: %v", err)
	}
	if err := open(NewSessionCache(0), testCache(), testFunction, testChecksum, msg[:len(msg)-1]); !errors.Is(err, ErrDecrypt) {
		t.Errorf("truncated: %v", err)
	}
	// Every byte is authenticated: the enc, the counter, the ciphertext.
	for _, at := range []int{0, EncSize + 7, EncSize + 8, len(msg) - 1} {
		bad := bytes.Clone(msg)
		bad[at] ^= 1
		if err := open(NewSessionCache(0), testCache(), testFunction, testChecksum, bad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("byte %d flipped: %v", at, err)
		}
	}
	if err := open(NewSessionCache(0), testCache(), testFunction, testChecksum, msg[:SessionOverhead-1]); !errors.Is(err, ErrMalformed) {
		t.Errorf("short: %v", err)
	}
	// An input sealed in a session does not open as a single-shot one, and
	// the other way round.
	if _, err := k.OpenInput(testFunction, testChecksum, msg, testCache(), t0); err == nil {
		t.Error("a session message opened as a single-shot input")
	}
	single := sealAt(t, k.PublicKey(), []byte("input"), nil, t0)
	if err := open(NewSessionCache(0), testCache(), testFunction, testChecksum, single); !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrMalformed) {
		t.Errorf("a single-shot input as a session message: %v", err)
	}
	// Stale messages are refused like single-shot inputs.
	late, _, _ := s.Seal([]byte("x"), &SessionInputOptions{IssuedAt: t0.Add(-time.Hour)})
	if err := open(NewSessionCache(0), testCache(), testFunction, testChecksum, late); !errors.Is(err, ErrStale) {
		t.Errorf("stale: %v", err)
	}
	// Outputs are sealed only in the session the input came in.
	in := &OpenedInput{}
	if _, err := in.SealSessionOutput([32]byte{}, nil); err == nil {
		t.Error("sealed a session output for a single-shot input")
	}
}

// Messages that do not open never enter the session cache, so garbage
// cannot evict real sessions.
func TestSessionCacheKeepsOnlyOpenedSessions(t *testing.T) {
	k := mustKey(t)
	sessions := NewSessionCache(2)
	for i := range 10 {
		junk := make([]byte, SessionOverhead+5)
		binary.BigEndian.PutUint64(junk, uint64(i))
		k.OpenSessionInput(testFunction, testChecksum, junk, sessions, testCache(), t0)
	}
	if sessions.Len() != 0 {
		t.Fatalf("%d junk sessions cached", sessions.Len())
	}
	for range 5 {
		s := newTestSession(t, k)
		msg, _, _ := s.Seal(nil, &SessionInputOptions{IssuedAt: t0})
		if _, err := k.OpenSessionInput(testFunction, testChecksum, msg, sessions, testCache(), t0); err != nil {
			t.Fatal(err)
		}
	}
	if sessions.Len() != 2 {
		t.Fatalf("cache of capacity 2 holds %d", sessions.Len())
	}
}

func TestNewSessionRefuses(t *testing.T) {
	k := mustKey(t)
	for name, f := range map[string]func() error{
		"boot":     func() error { _, err := NewSession(k.PublicKey(), testFunction, testChecksum, nil); return err },
		"key":      func() error { _, err := NewSession(make([]byte, 31), testFunction, testChecksum, testBoot); return err },
		"function": func() error { _, err := NewSession(k.PublicKey(), "", testChecksum, testBoot); return err },
		"checksum": func() error { _, err := NewSession(k.PublicKey(), testFunction, "ABC", testBoot); return err },
	} {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	s := newTestSession(t, k)
	s.next.Store(MaxSessionMessages)
	if _, _, err := s.Seal(nil, nil); !errors.Is(err, ErrSessionSpent) {
		t.Errorf("spent session: %v", err)
	}
}

// FuzzOpenSessionInput feeds arbitrary session messages to the runtime's
// side: it must never panic, and fail with exactly one sentinel.
func FuzzOpenSessionInput(f *testing.F) {
	s, _ := NewSession(fuzzKey.PublicKey(), testFunction, testChecksum, testBoot)
	good, _, _ := s.Seal([]byte("input"), &SessionInputOptions{IssuedAt: t0, SealOutput: true})
	f.Add(good)
	f.Add(good[:SessionOverhead])
	f.Add([]byte{})
	sessions := NewSessionCache(0)
	f.Fuzz(func(t *testing.T, msg []byte) {
		in, err := fuzzKey.OpenSessionInput(testFunction, testChecksum, msg, sessions, testCache(), t0)
		if err != nil {
			if in != nil {
				t.Fatal("result returned with an error")
			}
			n := 0
			for _, s := range []error{ErrMalformed, ErrDecrypt, ErrStale, ErrReplay, ErrStaleBoot, ErrInvalidKey} {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %q wraps %d sentinels", err, n)
			}
			return
		}
		if len(msg) != SessionOverhead+len(in.Input) {
			t.Fatalf("sizes do not add up: %d bytes, %d input", len(msg), len(in.Input))
		}
	})
}

func BenchmarkSession(b *testing.B) {
	k := mustKey(b)
	s := newTestSession(b, k)
	input := bytes.Repeat([]byte("m"), 732)
	b.Run("seal", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := s.Seal(input, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		sessions, cache := NewSessionCache(0), NewReplayCache(0, 0)
		cache.bootID = testBoot
		msgs := make([][]byte, 0, 1024)
		for b.Loop() {
			if len(msgs) == 0 {
				b.StopTimer()
				for range 1024 {
					m, _, _ := s.Seal(input, nil)
					msgs = append(msgs, m)
				}
				b.StartTimer()
			}
			m := msgs[len(msgs)-1]
			msgs = msgs[:len(msgs)-1]
			if _, err := k.OpenSessionInput(testFunction, testChecksum, m, sessions, cache, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
