package seal

import (
	"bytes"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testFunction = "k3v7abcdefghijklmnop"
	testChecksum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	otherSum     = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

var t0 = time.UnixMilli(1_750_000_000_123)

func mustKey(t testing.TB) *PrivateKey {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// testBoot is the boot ID the tests seal for; testCache returns an empty
// cache of that boot.
var testBoot = bytes.Repeat([]byte{0xb0}, BootIDSize)

func testCache() *ReplayCache {
	c := NewReplayCache(0, 0)
	c.bootID = bytes.Clone(testBoot)
	return c
}

func sealAt(t testing.TB, pub []byte, input []byte, reply []byte, at time.Time) []byte {
	t.Helper()
	return sealFor(t, pub, testBoot, input, reply, at)
}

func sealFor(t testing.TB, pub, boot []byte, input []byte, reply []byte, at time.Time) []byte {
	t.Helper()
	sealed, err := SealInput(pub, testFunction, testChecksum, input, &InputOptions{BootID: boot, ReplyKey: reply, IssuedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

func TestRoundTrip(t *testing.T) {
	runtimeKey := mustKey(t)
	replyKey := mustKey(t)
	for _, tt := range []struct {
		name  string
		input []byte
		reply []byte
	}{
		{"no reply key", []byte("hello"), nil},
		{"reply key", []byte("hello"), replyKey.PublicKey()},
		{"empty input", nil, nil},
		{"empty input with reply key", []byte{}, replyKey.PublicKey()},
		{"1 MiB", bytes.Repeat([]byte{0xa5}, 1<<20), replyKey.PublicKey()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sealed := sealAt(t, runtimeKey.PublicKey(), tt.input, tt.reply, t0)
			wantLen := EncSize + headerSize + len(tt.input) + tagSize
			if tt.reply != nil {
				wantLen += KeySize
			}
			if len(sealed) != wantLen {
				t.Errorf("sealed input is %d bytes, want %d", len(sealed), wantLen)
			}
			if len(sealed) > len(tt.input)+InputOverhead {
				t.Errorf("overhead %d exceeds InputOverhead", len(sealed)-len(tt.input))
			}
			cache := testCache()
			in, err := runtimeKey.OpenInput(testFunction, testChecksum, sealed, cache, t0.Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(in.Input, tt.input) || !in.IssuedAt.Equal(t0) || !bytes.Equal(in.ReplyKey, tt.reply) {
				t.Fatalf("opened %d bytes issued %v reply %x", len(in.Input), in.IssuedAt, in.ReplyKey)
			}
			if (in.ReplyKey == nil) != (tt.reply == nil) {
				t.Errorf("ReplyKey = %x, want nil: %v", in.ReplyKey, tt.reply == nil)
			}
			if cache.Len() != 1 {
				t.Errorf("cache holds %d entries, want 1", cache.Len())
			}
			if in.ReplyKey == nil {
				return
			}
			output := append([]byte("out:"), tt.input...)
			digest := sha256.Sum256(in.Input)
			sealedOut, err := SealOutput(in.ReplyKey, testFunction, testChecksum, digest, output)
			if err != nil {
				t.Fatal(err)
			}
			if len(sealedOut) != len(output)+OutputOverhead {
				t.Errorf("sealed output is %d bytes, want %d", len(sealedOut), len(output)+OutputOverhead)
			}
			got, err := replyKey.OpenOutput(testFunction, testChecksum, sha256.Sum256(tt.input), sealedOut)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, output) {
				t.Error("output does not round-trip")
			}
		})
	}
}

func TestSealIsRandomized(t *testing.T) {
	k := mustKey(t)
	a := sealAt(t, k.PublicKey(), []byte("x"), nil, t0)
	b := sealAt(t, k.PublicKey(), []byte("x"), nil, t0)
	if bytes.Equal(a[:EncSize], b[:EncSize]) || bytes.Equal(a, b) {
		t.Fatal("two sealings of the same input share an encapsulated key")
	}
}

// TestInfoKnownAnswer pins the info bytes to the layout in the package
// documentation, byte by byte.
func TestInfoKnownAnswer(t *testing.T) {
	zeros := strings.Repeat("0", 64)
	want := mustHex("766f7563682f696e7075742f7631" + // "vouch/input/v1"
		"00" +
		"00000002" + "666e" + // lp("fn")
		"00000040" + strings.Repeat("30", 64)) // lp(checksum as text)
	if got := inputInfo("fn", zeros); !bytes.Equal(got, want) {
		t.Errorf("inputInfo =\n%x\nwant\n%x", got, want)
	}

	var digest [32]byte
	for i := range digest {
		digest[i] = byte(i)
	}
	want = mustHex("766f7563682f6f75747075742f7631" + // "vouch/output/v1"
		"00" +
		"0000000b" + hex.EncodeToString([]byte("k3v7example")) +
		"00000040" + hex.EncodeToString([]byte(testChecksum)) +
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	if got := outputInfo("k3v7example", testChecksum, digest); !bytes.Equal(got, want) {
		t.Errorf("outputInfo =\n%x\nwant\n%x", got, want)
	}
}

// Golden vector, for other implementations (docs/FORMATS.md). The keys are
// the X25519 keys of RFC 8448 / tls13.xargs.org: private 00 01 … 1f for the
// runtime and 20 21 … 3f for the reply key.
const (
	goldenRuntimePriv = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	goldenRuntimePub  = "8f40c5adb68f25624ae5b214ea767a6ec94d829d3d7b5e1ad1ba6f3e2138285f"
	goldenReplyPriv   = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	goldenReplyPub    = "358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254"
	goldenFunction    = "k3v7example"
	goldenChecksum    = "50d858e0985ecc7f60418aaf0cc5ab587f42c2570a884095a9e8ccacd0f6545c" // SHA-256("example")
	goldenIssuedAt    = 1750000000000                                                      // ms
	goldenInput       = "hello, vouch"
	goldenOutput      = "HELLO, VOUCH"
	goldenBootID      = "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
	goldenSealedIn    = "fa4ea24ccd8564731088c3e734ecf48393931e6c1f21ecfb0c47edc78b66bd2f" + // enc
		"4a2d25145d9375102ade47fe469e6c180278617dc212e12ef817155e82ea8c12dc49b99c4193add85a9db237a298cf5f284eedb3e35af168f22d4db3658b231e16d5f8480cfb185ccdf51df467a0ddc0e6df42548cd5"
	goldenSealedOut = "e4b0b6edfa88d3451daec0c42cb924ddf0b113e8c5d73161c818331934ee8910" + // enc
		"37ae02add1d3127b32941c4da5c7ead660ae1fe56e3bcdf4ce209111"
)

// goldenCache is an empty cache of the golden vector's boot.
func goldenCache() *ReplayCache {
	c := NewReplayCache(0, 0)
	c.bootID = mustHex(goldenBootID)
	return c
}

func TestGoldenVector(t *testing.T) {
	runtimeKey, err := NewPrivateKey(mustHex(goldenRuntimePriv))
	if err != nil {
		t.Fatal(err)
	}
	replyKey, err := NewPrivateKey(mustHex(goldenReplyPriv))
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(runtimeKey.PublicKey()) != goldenRuntimePub || hex.EncodeToString(replyKey.PublicKey()) != goldenReplyPub {
		t.Fatal("public keys do not match the vector")
	}
	sum := sha256.Sum256([]byte("example"))
	if hex.EncodeToString(sum[:]) != goldenChecksum {
		t.Fatal("checksum does not match the vector")
	}
	now := time.UnixMilli(goldenIssuedAt)
	in, err := runtimeKey.OpenInput(goldenFunction, goldenChecksum, mustHex(goldenSealedIn), goldenCache(), now)
	if err != nil {
		t.Fatal(err)
	}
	if string(in.Input) != goldenInput || hex.EncodeToString(in.ReplyKey) != goldenReplyPub || in.IssuedAt.UnixMilli() != goldenIssuedAt ||
		hex.EncodeToString(in.BootID) != goldenBootID {
		t.Fatalf("opened %q reply %x at %d", in.Input, in.ReplyKey, in.IssuedAt.UnixMilli())
	}
	out, err := replyKey.OpenOutput(goldenFunction, goldenChecksum, sha256.Sum256([]byte(goldenInput)), mustHex(goldenSealedOut))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != goldenOutput {
		t.Fatalf("output = %q", out)
	}
}

// TestEnvelopeLayout opens a sealed input with plain HPKE and checks the
// envelope byte by byte.
func TestEnvelopeLayout(t *testing.T) {
	k := mustKey(t)
	reply := bytes.Repeat([]byte{0x42}, KeySize)
	for _, withReply := range []bool{false, true} {
		var r []byte
		if withReply {
			r = reply
		}
		sealed := sealAt(t, k.PublicKey(), []byte("abc"), r, t0)
		env, err := hpke.Open(k.hpke, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), inputInfo(testFunction, testChecksum), sealed)
		if err != nil {
			t.Fatal(err)
		}
		want := []byte{0x02}
		want = append(want, testBoot...)
		want = binary.BigEndian.AppendUint64(want, uint64(t0.UnixMilli()))
		if withReply {
			want = append(want, 0x01)
			want = append(want, reply...)
		} else {
			want = append(want, 0x00)
		}
		want = append(want, "abc"...)
		if !bytes.Equal(env, want) {
			t.Errorf("reply %v: envelope =\n%x\nwant\n%x", withReply, env, want)
		}
	}
}

func TestOpenInputWrongFunctionOrChecksum(t *testing.T) {
	k := mustKey(t)
	sealed := sealAt(t, k.PublicKey(), []byte("secret input"), nil, t0)
	for _, tt := range []struct{ function, checksum string }{
		{"k3v7other", testChecksum},
		{testFunction, otherSum},
		{testFunction + "x", testChecksum},
	} {
		_, err := k.OpenInput(tt.function, tt.checksum, sealed, testCache(), t0)
		if !errors.Is(err, ErrDecrypt) {
			t.Fatalf("%v: err = %v, want ErrDecrypt", tt, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "cannot open sealed input: it was sealed for another function or checksum, or to another key of the runtime (re-attest if its key changed), or was tampered with") ||
			!strings.Contains(msg, tt.function) || !strings.Contains(msg, tt.checksum) {
			t.Errorf("message %q", msg)
		}
		if strings.Contains(msg, "secret input") {
			t.Error("message contains the plaintext")
		}
	}
	// The right function still opens it: a failed attempt records nothing.
	cache := testCache()
	if _, err := k.OpenInput("k3v7other", testChecksum, sealed, cache, t0); !errors.Is(err, ErrDecrypt) {
		t.Fatal(err)
	}
	if _, err := k.OpenInput(testFunction, testChecksum, sealed, cache, t0); err != nil {
		t.Fatal(err)
	}
}

func TestOpenInputWrongKey(t *testing.T) {
	k, other := mustKey(t), mustKey(t)
	sealed := sealAt(t, k.PublicKey(), []byte("x"), nil, t0)
	if _, err := other.OpenInput(testFunction, testChecksum, sealed, testCache(), t0); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("err = %v, want ErrDecrypt", err)
	}
}

func TestOpenInputFlippedBits(t *testing.T) {
	k := mustKey(t)
	sealed := sealAt(t, k.PublicKey(), []byte("0123456789"), mustKey(t).PublicKey(), t0)
	for i := range sealed {
		for _, bit := range []byte{0x01, 0x80} {
			mod := bytes.Clone(sealed)
			mod[i] ^= bit
			// X25519 ignores the top bit of a public key, but HPKE binds
			// enc byte for byte, so even that flip must be caught.
			_, err := k.OpenInput(testFunction, testChecksum, mod, testCache(), t0)
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("byte %d ^ %#02x: err = %v, want ErrDecrypt", i, bit, err)
			}
		}
	}
}

func TestOpenInputTruncatedOrExtended(t *testing.T) {
	k := mustKey(t)
	sealed := sealAt(t, k.PublicKey(), []byte("0123456789"), nil, t0)
	for n := 0; n < len(sealed); n++ {
		_, err := k.OpenInput(testFunction, testChecksum, sealed[:n], testCache(), t0)
		want := ErrDecrypt
		if n < MinInputSize {
			want = ErrMalformed
			if !strings.Contains(err.Error(), "less than the minimum of 74") {
				t.Fatalf("truncated to %d bytes: err = %v, want it to name the minimum of 74 bytes", n, err)
			}
		}
		if !errors.Is(err, want) {
			t.Fatalf("truncated to %d bytes: err = %v, want %v", n, err, want)
		}
	}
	long := append(bytes.Clone(sealed), 0)
	if _, err := k.OpenInput(testFunction, testChecksum, long, testCache(), t0); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("extended: err = %v, want ErrDecrypt", err)
	}
}

// TestMinInputSize: the smallest input SealInput makes (an empty one
// without a reply key) is MinInputSize bytes, 74 as docs/FORMATS.md says,
// and OpenInput opens it.
func TestMinInputSize(t *testing.T) {
	k := mustKey(t)
	sealed := sealAt(t, k.PublicKey(), nil, nil, t0)
	if len(sealed) != MinInputSize || MinInputSize != 74 {
		t.Fatalf("an empty input seals to %d bytes, MinInputSize is %d; want both 74", len(sealed), MinInputSize)
	}
	if _, err := k.OpenInput(testFunction, testChecksum, sealed, testCache(), t0); err != nil {
		t.Fatal(err)
	}
}

func TestOpenInputOversize(t *testing.T) {
	k := mustKey(t)
	huge := make([]byte, MaxInputSize+InputOverhead+1)
	_, err := k.OpenInput(testFunction, testChecksum, huge, testCache(), t0)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "more than the limit") {
		t.Fatalf("err = %v, want ErrMalformed (too large)", err)
	}
	_, err = k.OpenOutput(testFunction, testChecksum, [32]byte{}, huge[:MaxOutputSize+OutputOverhead+1])
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("output: err = %v, want ErrMalformed", err)
	}
}

// sealEnvelope seals an arbitrary envelope, bypassing SealInput's checks.
func sealEnvelope(t testing.TB, pub []byte, env []byte) []byte {
	t.Helper()
	pk, err := kem.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := hpke.Seal(pk, kdf, aead, inputInfo(testFunction, testChecksum), env)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

// envelope builds a version 2 envelope for testBoot; envelopeV1 one of the
// old version 1 layout, without a boot ID.
func envelope(version byte, issuedAt int64, flag byte, rest ...byte) []byte {
	b := append([]byte{version}, testBoot...)
	b = binary.BigEndian.AppendUint64(b, uint64(issuedAt))
	b = append(b, flag)
	return append(b, rest...)
}

func envelopeV1(issuedAt int64, flag byte, rest ...byte) []byte {
	b := []byte{1}
	b = binary.BigEndian.AppendUint64(b, uint64(issuedAt))
	b = append(b, flag)
	return append(b, rest...)
}

func TestOpenInputBadEnvelope(t *testing.T) {
	k := mustKey(t)
	ms := t0.UnixMilli()
	for _, tt := range []struct {
		name string
		env  []byte
		msg  string
	}{
		{"version 0", envelope(0, ms, 0), "version is 0"},
		{"version 3", envelope(3, ms, 0), "version is 3"},
		{"version 1", envelopeV1(ms, 0, []byte("an input that was valid once")...), "envelope version 1 does not bind the runtime's boot ID"},
		{"version 1, empty input", envelopeV1(ms, 0), "less than the minimum of 74"},
		{"version 1 with reply key", envelopeV1(ms, 1, make([]byte, 32)...), "no longer accepted"},
		{"header cut short", envelope(2, ms, 0)[:20], "less than the minimum of 74"},
		{"flag 2", envelope(2, ms, 2), "reply flag is 0x02"},
		{"flag 0xff", envelope(2, ms, 0xff, make([]byte, 40)...), "reply flag is 0xff"},
		{"reply key missing", envelope(2, ms, 1), "announces a reply key"},
		{"reply key short", envelope(2, ms, 1, make([]byte, 31)...), "announces a reply key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sealed := sealEnvelope(t, k.PublicKey(), tt.env)
			_, err := k.OpenInput(testFunction, testChecksum, sealed, testCache(), t0)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want ErrMalformed containing %q", err, tt.msg)
			}
		})
	}
	// A short envelope cannot even be sealed into a long enough message.
	sealed := sealEnvelope(t, k.PublicKey(), []byte{1, 2, 3})
	if _, err := k.OpenInput(testFunction, testChecksum, sealed, testCache(), t0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short envelope: err = %v, want ErrMalformed", err)
	}
}

// An input is bound to the boot of the runtime it was sealed for: another
// cache (a restarted runtime) refuses it with ErrStaleBoot and records
// nothing, while the right one still accepts it once.
func TestOpenInputOtherBoot(t *testing.T) {
	k := mustKey(t)
	before, after := NewReplayCache(0, 0), NewReplayCache(0, 0)
	if len(before.BootID()) != BootIDSize || bytes.Equal(before.BootID(), after.BootID()) || bytes.Equal(before.BootID(), make([]byte, BootIDSize)) {
		t.Fatalf("boot IDs %x and %x: want two random %d-byte IDs", before.BootID(), after.BootID(), BootIDSize)
	}
	id := before.BootID()
	id[0] ^= 0xff
	if bytes.Equal(id, before.BootID()) {
		t.Fatal("BootID returned the cache's own slice")
	}
	// Sealed up to the window ahead of the clock: before the boot ID, such
	// an input was accepted again after a restart.
	sealed := sealFor(t, k.PublicKey(), before.BootID(), []byte("pay 10"), nil, t0.Add(4*time.Minute))
	if _, err := k.OpenInput(testFunction, testChecksum, sealed, before, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := k.OpenInput(testFunction, testChecksum, sealed, before, t0); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay in the same boot: err = %v, want ErrReplay", err)
	}
	for _, now := range []time.Time{t0, t0.Add(time.Second), t0.Add(4 * time.Minute)} {
		_, err := k.OpenInput(testFunction, testChecksum, sealed, after, now)
		if !errors.Is(err, ErrStaleBoot) || errors.Is(err, ErrReplay) || !strings.Contains(err.Error(), "restarted") {
			t.Fatalf("after a restart: err = %v, want ErrStaleBoot", err)
		}
	}
	if after.Len() != 0 {
		t.Error("an input of another boot was recorded")
	}
	// A new input for the new boot is accepted at once: no dead window.
	fresh := sealFor(t, k.PublicKey(), after.BootID(), []byte("pay 10"), nil, t0.Add(-time.Second))
	if _, err := k.OpenInput(testFunction, testChecksum, fresh, after, t0); err != nil {
		t.Fatalf("fresh input after a restart: %v", err)
	}
	// SealInput requires a boot ID of the right size.
	for _, opts := range []*InputOptions{nil, {}, {BootID: make([]byte, 15)}} {
		if _, err := SealInput(k.PublicKey(), testFunction, testChecksum, nil, opts); err == nil || !strings.Contains(err.Error(), "boot ID") {
			t.Errorf("SealInput with %+v: err = %v, want a boot ID error", opts, err)
		}
	}
}

func TestOpenInputReplay(t *testing.T) {
	k := mustKey(t)
	cache := testCache()
	sealed := sealAt(t, k.PublicKey(), []byte("pay 10"), nil, t0)
	if _, err := k.OpenInput(testFunction, testChecksum, sealed, cache, t0); err != nil {
		t.Fatal(err)
	}
	for _, later := range []time.Duration{0, time.Second, DefaultReplayWindow} {
		_, err := k.OpenInput(testFunction, testChecksum, sealed, cache, t0.Add(later))
		if !errors.Is(err, ErrReplay) {
			t.Fatalf("replay %v later: err = %v, want ErrReplay", later, err)
		}
	}
	// Once issued_at has left the window the replay is stale instead.
	_, err := k.OpenInput(testFunction, testChecksum, sealed, cache, t0.Add(DefaultReplayWindow+time.Millisecond))
	if !errors.Is(err, ErrStale) {
		t.Fatalf("late replay: err = %v, want ErrStale", err)
	}
	// A fresh sealing of the same input is not a replay.
	again := sealAt(t, k.PublicKey(), []byte("pay 10"), nil, t0)
	if _, err := k.OpenInput(testFunction, testChecksum, again, cache, t0); err != nil {
		t.Fatal(err)
	}
}

func TestOpenInputStale(t *testing.T) {
	k := mustKey(t)
	w := DefaultReplayWindow
	for _, tt := range []struct {
		name   string
		offset time.Duration // issued_at - now
		want   error
		msg    string
	}{
		{"now", 0, nil, ""},
		{"oldest accepted", -w, nil, ""},
		{"newest accepted", w, nil, ""},
		{"just too old", -w - time.Millisecond, ErrStale, "before the runtime's clock"},
		{"an hour old", -time.Hour, ErrStale, "before the runtime's clock"},
		{"just too far ahead", w + time.Millisecond, ErrStale, "check the client's clock"},
		{"a day ahead", 24 * time.Hour, ErrStale, "check the client's clock"},
		{"epoch", 0, ErrStale, "1970-01-01T00:00:00.000Z"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			now := t0
			at := now.Add(tt.offset)
			if tt.name == "epoch" {
				at = time.UnixMilli(0)
			}
			sealed := sealAt(t, k.PublicKey(), []byte("x"), nil, at)
			cache := testCache()
			_, err := k.OpenInput(testFunction, testChecksum, sealed, cache, now)
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q does not contain %q", err, tt.msg)
			}
			if err != nil && cache.Len() != 0 {
				t.Error("a refused input was recorded")
			}
		})
	}
}

func TestOpenInputBadArguments(t *testing.T) {
	k := mustKey(t)
	sealed := sealAt(t, k.PublicKey(), []byte("x"), nil, t0)
	for _, tt := range []struct {
		name, function, checksum string
		cache                    *ReplayCache
		msg                      string
	}{
		{"nil cache", testFunction, testChecksum, nil, "needs a ReplayCache"},
		{"empty function", "", testChecksum, testCache(), "function ID is empty"},
		{"function with slash", "a/b", testChecksum, testCache(), `contains '/'`},
		{"long function", strings.Repeat("a", MaxFunctionIDLen+1), testChecksum, testCache(), "129 bytes"},
		{"uppercase checksum", testFunction, strings.ToUpper(testChecksum), testCache(), "64 lowercase hex"},
		{"short checksum", testFunction, "abc", testCache(), `"abc" is not 64`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := k.OpenInput(tt.function, tt.checksum, sealed, tt.cache, t0)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want one containing %q", err, tt.msg)
			}
		})
	}
}

func TestSealInputBadInput(t *testing.T) {
	k := mustKey(t)
	pub := k.PublicKey()
	lowOrder := make([]byte, KeySize) // the all-zero point has order 1
	boot := &InputOptions{BootID: testBoot}
	for _, tt := range []struct {
		name               string
		pub                []byte
		function, checksum string
		input              []byte
		opts               *InputOptions
		want               error
		msg                string
	}{
		{"nil recipient", nil, testFunction, testChecksum, nil, boot, ErrInvalidKey, "recipient key is 0 bytes"},
		{"short recipient", pub[:31], testFunction, testChecksum, nil, boot, ErrInvalidKey, "recipient key is 31 bytes"},
		{"low-order recipient", lowOrder, testFunction, testChecksum, nil, boot, ErrInvalidKey, "recipient"},
		{"short reply key", pub, testFunction, testChecksum, nil, &InputOptions{BootID: testBoot, ReplyKey: pub[:16]}, ErrInvalidKey, "reply key is 16 bytes"},
		{"empty reply key", pub, testFunction, testChecksum, nil, &InputOptions{BootID: testBoot, ReplyKey: []byte{}}, ErrInvalidKey, "reply key is 0 bytes"},
		{"empty function", pub, "", testChecksum, nil, boot, nil, "function ID is empty"},
		{"bad checksum", pub, testFunction, "ABC", nil, boot, nil, "64 lowercase hex"},
		{"input too large", pub, testFunction, testChecksum, make([]byte, MaxInputSize+1), boot, nil, "more than the limit"},
		{"no boot ID", pub, testFunction, testChecksum, nil, nil, nil, "boot ID is 0 bytes"},
		{"long boot ID", pub, testFunction, testChecksum, nil, &InputOptions{BootID: make([]byte, 17)}, nil, "boot ID is 17 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := SealInput(tt.pub, tt.function, tt.checksum, tt.input, tt.opts)
			if err == nil || sealed != nil {
				t.Fatalf("SealInput succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q does not contain %q", err, tt.msg)
			}
		})
	}
	// The largest input is accepted.
	if _, err := SealInput(pub, testFunction, testChecksum, make([]byte, MaxInputSize), boot); err != nil {
		t.Errorf("MaxInputSize input: %v", err)
	}
}

func TestOutputBinding(t *testing.T) {
	reply := mustKey(t)
	digest := sha256.Sum256([]byte("input"))
	sealed, err := SealOutput(reply.PublicKey(), testFunction, testChecksum, digest, []byte("secret output"))
	if err != nil {
		t.Fatal(err)
	}
	otherDigest := sha256.Sum256([]byte("other input"))
	for _, tt := range []struct {
		name               string
		key                *PrivateKey
		function, checksum string
		digest             [32]byte
	}{
		{"other function", reply, "k3v7other", testChecksum, digest},
		{"other checksum", reply, testFunction, otherSum, digest},
		{"other input", reply, testFunction, testChecksum, otherDigest},
		{"other key", mustKey(t), testFunction, testChecksum, digest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.key.OpenOutput(tt.function, tt.checksum, tt.digest, sealed)
			if !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), "cannot open sealed output") {
				t.Fatalf("err = %v, want ErrDecrypt for an output", err)
			}
			if strings.Contains(err.Error(), "secret output") {
				t.Error("message contains the plaintext")
			}
		})
	}
	for i := range sealed {
		mod := bytes.Clone(sealed)
		mod[i] ^= 0x04
		if _, err := reply.OpenOutput(testFunction, testChecksum, digest, mod); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("byte %d flipped: err = %v, want ErrDecrypt", i, err)
		}
	}
	for n := range len(sealed) {
		want := ErrDecrypt
		if n < OutputOverhead {
			want = ErrMalformed
		}
		if _, err := reply.OpenOutput(testFunction, testChecksum, digest, sealed[:n]); !errors.Is(err, want) {
			t.Fatalf("truncated to %d: err = %v, want %v", n, err, want)
		}
	}
}

func TestSealOutputBadInput(t *testing.T) {
	reply := mustKey(t)
	for _, tt := range []struct {
		name     string
		pub      []byte
		function string
		output   []byte
		want     error
		msg      string
	}{
		{"no reply key", nil, testFunction, nil, ErrInvalidKey, "reply key is 0 bytes"},
		{"low-order reply key", make([]byte, KeySize), testFunction, nil, ErrInvalidKey, "reply key"},
		{"bad function", reply.PublicKey(), "a b", nil, nil, `contains ' '`},
		{"output too large", reply.PublicKey(), testFunction, make([]byte, MaxOutputSize+1), nil, "more than the limit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := SealOutput(tt.pub, tt.function, testChecksum, [32]byte{}, tt.output)
			if err == nil || sealed != nil {
				t.Fatal("SealOutput succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q does not contain %q", err, tt.msg)
			}
		})
	}
}

func TestPrivateKey(t *testing.T) {
	k := mustKey(t)
	raw := k.Bytes()
	if len(raw) != KeySize || len(k.PublicKey()) != KeySize {
		t.Fatal("wrong key sizes")
	}
	k2, err := NewPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k2.PublicKey(), k.PublicKey()) || !bytes.Equal(k2.Bytes(), raw) {
		t.Fatal("NewPrivateKey(Bytes()) is another key")
	}
	// Bytes and PublicKey return copies.
	k.Bytes()[0] ^= 0xff
	k.PublicKey()[0] ^= 0xff
	if !bytes.Equal(k.Bytes(), raw) || !bytes.Equal(k.PublicKey(), k2.PublicKey()) {
		t.Fatal("key changed through a returned slice")
	}
	for _, n := range []int{0, 31, 33, 64} {
		if _, err := NewPrivateKey(make([]byte, n)); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%d bytes", n)) {
			t.Errorf("NewPrivateKey(%d bytes): err = %v", n, err)
		}
	}
	// Printing a key never shows the private half.
	secret := hex.EncodeToString(raw)
	type holder struct{ K *PrivateKey }
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X"} {
		for _, v := range []any{k, holder{k}, []*PrivateKey{k}} {
			out := fmt.Sprintf(format, v)
			if strings.Contains(strings.ToLower(out), secret) || strings.Contains(out, string(raw)) {
				t.Errorf("fmt %s of %T shows the private key: %s", format, v, out)
			}
		}
	}
	if s := k.String(); !strings.Contains(s, hex.EncodeToString(k.PublicKey())) {
		t.Errorf("String() = %q, want the public key", s)
	}
}

func TestConcurrentOpenSameInput(t *testing.T) {
	k := mustKey(t)
	cache := testCache()
	sealed := sealAt(t, k.PublicKey(), []byte("once"), nil, t0)
	var ok, replays atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			_, err := k.OpenInput(testFunction, testChecksum, sealed, cache, t0)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrReplay):
				replays.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || replays.Load() != 15 {
		t.Fatalf("%d opened, %d replays; want 1 and 15", ok.Load(), replays.Load())
	}
}
