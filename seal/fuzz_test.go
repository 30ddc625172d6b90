package seal

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

var fuzzKey, _ = NewPrivateKey(mustHex(goldenRuntimePriv))

// FuzzOpenInput feeds arbitrary sealed messages to OpenInput: it must never
// panic, and must fail with exactly one sentinel.
func FuzzOpenInput(f *testing.F) {
	f.Add(mustHex(goldenSealedIn), goldenFunction, int64(0))
	withReply := sealAt(f, fuzzKey.PublicKey(), []byte("input"), mustHex(goldenReplyPub), t0)
	f.Add(withReply, testFunction, int64(0))
	f.Add(sealAt(f, fuzzKey.PublicKey(), nil, nil, t0), testFunction, int64(-1))
	f.Add(withReply[:EncSize+headerSize+tagSize], testFunction, int64(0))
	f.Add([]byte{}, "", int64(0))
	f.Fuzz(func(t *testing.T, sealed []byte, functionID string, skewMillis int64) {
		now := t0.Add(time.Duration(skewMillis) * time.Millisecond)
		if functionID == goldenFunction {
			now = time.UnixMilli(goldenIssuedAt + skewMillis)
		}
		checksum := testChecksum
		if functionID == goldenFunction {
			checksum = goldenChecksum
		}
		cache := testCache()
		if functionID == goldenFunction {
			cache = goldenCache()
		}
		in, err := fuzzKey.OpenInput(functionID, checksum, sealed, cache, now)
		if err != nil {
			if in != nil {
				t.Fatal("result returned with an error")
			}
			if checkFunction(functionID, checksum) != nil {
				return // the caller's own arguments were refused
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
		if len(sealed) != EncSize+headerSize+len(in.ReplyKey)+len(in.Input)+tagSize {
			t.Fatalf("sizes do not add up: %d sealed, %d input, %d reply key", len(sealed), len(in.Input), len(in.ReplyKey))
		}
		if in.ReplyKey != nil && len(in.ReplyKey) != KeySize {
			t.Fatalf("reply key is %d bytes", len(in.ReplyKey))
		}
		if _, err := fuzzKey.OpenInput(functionID, checksum, sealed, cache, now); !errors.Is(err, ErrReplay) {
			t.Fatalf("second open: err = %v, want ErrReplay", err)
		}
	})
}

// FuzzOpenEnvelope seals arbitrary envelopes properly, to reach the envelope
// parser that FuzzOpenInput's random ciphertexts never get past.
func FuzzOpenEnvelope(f *testing.F) {
	f.Add(envelope(2, t0.UnixMilli(), 0, []byte("input")...))
	f.Add(envelope(2, t0.UnixMilli(), 1, make([]byte, 40)...))
	f.Add(envelope(2, t0.UnixMilli(), 1, make([]byte, 31)...))
	f.Add(envelope(3, 0, 7))
	f.Add(envelopeV1(t0.UnixMilli(), 0, []byte("input")...))
	f.Add(append(append([]byte{2}, bytes.Repeat([]byte{0xc0}, BootIDSize)...), make([]byte, 9)...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, env []byte) {
		sealed := sealEnvelope(t, fuzzKey.PublicKey(), env)
		in, err := fuzzKey.OpenInput(testFunction, testChecksum, sealed, testCache(), t0)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrStale) && !errors.Is(err, ErrStaleBoot) {
				t.Fatalf("err = %v, want ErrMalformed, ErrStale or ErrStaleBoot", err)
			}
			return
		}
		// Accepted: it must be exactly a well-formed envelope.
		want := envelope(2, in.IssuedAt.UnixMilli(), 0)
		if in.ReplyKey != nil {
			want = envelope(2, in.IssuedAt.UnixMilli(), 1, in.ReplyKey...)
		}
		want = append(want, in.Input...)
		if !bytes.Equal(want, env) {
			t.Fatalf("accepted envelope %x, re-encoded %x", env, want)
		}
	})
}
