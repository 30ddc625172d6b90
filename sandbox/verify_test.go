package sandbox

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// ed25519_verify answers whether a signature is valid, as
// crypto/ed25519.Verify does, and traps on ranges outside memory and on
// messages over MaxVerifyMessage.
func TestHostVerifiesEd25519(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := ed25519.GenerateKey(nil)
	msg := []byte("a view, signed")
	sig := ed25519.Sign(priv, msg)
	flipped := append([]byte(nil), sig...)
	flipped[10] ^= 1
	empty := ed25519.Sign(priv, nil)
	inBothModes(t, func(t *testing.T, f *Function) {
		for _, tc := range []struct {
			name          string
			pub, msg, sig []byte
			want          string
		}{
			{"valid", pub, msg, sig, "true"},
			{"empty message", pub, nil, empty, "true"},
			{"flipped signature bit", pub, msg, flipped, "false"},
			{"other message", pub, []byte("a view, signed!"), sig, "false"},
			{"other key", other, msg, sig, "false"},
			{"short key", pub[:31], msg, sig, "false"},
			{"short signature", pub, msg, sig[:63], "false"},
		} {
			in := "verify:" + hex.EncodeToString(tc.pub) + ":" + hex.EncodeToString(tc.msg) + ":" + hex.EncodeToString(tc.sig)
			res, err := f.Invoke(context.Background(), []byte(in), nil)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if got := string(res.Output); got != tc.want {
				t.Errorf("%s: verify = %s, want %s", tc.name, got, tc.want)
			}
		}
		for _, tc := range []struct{ arg, msg string }{
			{"oob", "ed25519_verify: a range is outside memory"},
			{"huge", "ed25519_verify: message of 1048577 bytes; at most 1048576"},
		} {
			_, err := f.Invoke(context.Background(), []byte("verify-raw:"+tc.arg), nil)
			if fe := wantKind(t, err, KindHost); !strings.Contains(fe.Message, tc.msg) {
				t.Errorf("verify-raw:%s: message %q, want it to contain %q", tc.arg, fe.Message, tc.msg)
			}
		}
		// The instance that trapped is replaced: the function still works.
		res, err := f.Invoke(context.Background(), []byte("verify:"+hex.EncodeToString(pub)+":"+hex.EncodeToString(msg)+":"+hex.EncodeToString(sig)), nil)
		if err != nil || string(res.Output) != "true" {
			t.Fatalf("after the traps: %v %v", res, err)
		}
	})
}

// sha256 writes crypto/sha256's digest, and traps on ranges outside memory
// and on messages over MaxHashMessage.
func TestHostHashesSHA256(t *testing.T) {
	inBothModes(t, func(t *testing.T, f *Function) {
		for _, msg := range [][]byte{nil, []byte("5000\n5001"), make([]byte, 1000)} {
			res, err := f.Invoke(context.Background(), []byte("sha256:"+hex.EncodeToString(msg)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := sha256.Sum256(msg); string(res.Output) != hex.EncodeToString(want[:]) {
				t.Errorf("sha256(%d bytes) = %s, want %x", len(msg), res.Output, want)
			}
		}
		for _, tc := range []struct{ arg, msg string }{
			{"oob", "sha256: a range is outside memory"},
			{"huge", "sha256: message of 1048577 bytes; at most 1048576"},
		} {
			_, err := f.Invoke(context.Background(), []byte("sha256-raw:"+tc.arg), nil)
			if fe := wantKind(t, err, KindHost); !strings.Contains(fe.Message, tc.msg) {
				t.Errorf("sha256-raw:%s: message %q, want it to contain %q", tc.arg, fe.Message, tc.msg)
			}
		}
	})
}
