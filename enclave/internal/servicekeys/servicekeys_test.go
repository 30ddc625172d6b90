package servicekeys

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(k.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Receipt.Equal(k.Receipt) || !got.Token.Equal(k.Token) || !bytes.Equal(got.HPKE.Bytes(), k.HPKE.Bytes()) ||
		got.OwnerToken != k.OwnerToken || !bytes.Equal(got.Secret, k.Secret) {
		t.Fatal("keys changed in a round trip")
	}
	if !bytes.Equal(got.StorageKey(), k.StorageKey()) || !got.TLSAuthority().Equal(k.TLSAuthority()) {
		t.Fatal("derived keys changed in a round trip")
	}
	if bytes.Equal(k.StorageKey(), k.TLSAuthority().Seed()) {
		t.Fatal("storage and TLS keys are the same bytes")
	}
}

func TestNoSecretsInStrings(t *testing.T) {
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k)} {
		if strings.Contains(s, k.OwnerToken) || !strings.Contains(s, k.KeyID()) {
			t.Fatalf("formatted keys: %s", s)
		}
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	k, _ := Generate()
	good := k.Marshal()
	for name, b := range map[string][]byte{
		"empty":        nil,
		"truncated":    good[:len(good)-1],
		"trailing":     append(bytes.Clone(good), 0),
		"bad owner":    (&Keys{Receipt: k.Receipt, Token: k.Token, HPKE: k.HPKE, OwnerToken: "x", Secret: k.Secret}).Marshal(),
		"short secret": (&Keys{Receipt: k.Receipt, Token: k.Token, HPKE: k.HPKE, OwnerToken: k.OwnerToken, Secret: k.Secret[:31]}).Marshal(),
	} {
		if _, err := Unmarshal(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	k, _ := Generate()
	f.Add(k.Marshal())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if !bytes.Equal(got.Marshal(), b) {
			t.Fatal("accepted a non-canonical encoding")
		}
	})
}
