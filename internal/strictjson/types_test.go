//go:build !wasip1

package strictjson_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/internal/strictjson"
	"github.com/vouch-dev/vouch/receipt"
)

// documents are what vouch writes (with encoding/json) and reads back
// strictly, with a fresh value of each document's type.
func documents(t testing.TB) []struct {
	doc  any
	into func() any
} {
	owner := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	node := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	sc, err := cluster.Sign(cluster.Config{Cluster: "c", Version: 3, Owner: owner.Public().(ed25519.PublicKey), Policy: cluster.PolicyHighest, LeaseMillis: 1000, ViewTTLMillis: 2000,
		Members: []cluster.Member{{ID: "a", Key: node.Public().(ed25519.PublicKey), Stake: 2}}}, owner)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := cluster.SignView(cluster.View{Cluster: "c", Node: "a", Seq: 9, TimeMillis: 5, Alive: []string{"a", "b"}}, node)
	if err != nil {
		t.Fatal(err)
	}
	draft := &cluster.Signed{Config: cluster.Config{Cluster: "d", Version: 1, Owner: owner.Public().(ed25519.PublicKey), Policy: cluster.PolicyHighest}}
	rc := receipt.Receipt{FunctionID: "f", FunctionChecksum: "00", Seq: 1, Time: time.Unix(1, 5).UTC(), Signature: []byte{1}}
	return []struct {
		doc  any
		into func() any
	}{
		{sc, func() any { return new(cluster.Signed) }},
		{draft, func() any { return new(cluster.Signed) }},
		{sv, func() any { return new(cluster.SignedView) }},
		{election.TermOutcome{Cluster: "c", Term: 2, Leader: "a", LeaseMs: 1000}, func() any { return new(election.TermOutcome) }},
		{rc, func() any { return new(receipt.Receipt) }},
		{api.RunRecord{Output: []byte("x"), Receipt: rc, Attestation: &api.AttestationSummary{Platform: "SIMULATED", Simulated: true}}, func() any { return new(api.RunRecord) }},
		{api.TokenRequest{FunctionChecksum: "ab", Expiry: "1h"}, func() any { return new(api.TokenRequest) }},
		{api.Ref{FunctionID: "f", Trust: api.Trust{Platform: "SIMULATED", PCRs: map[string][]string{"0": {"aa"}}}}, func() any { return new(api.Ref) }},
		{bundle.Manifest{Name: "n", AllowPlaintextInput: true, Limits: bundle.Limits{Timeout: bundle.Duration(time.Second), MemoryMiB: 2}}, func() any { return new(bundle.Manifest) }},
	}
}

// TestOwnDocuments: every kind of document vouch writes decodes back to
// the same value through both implementations, and each refuses the
// document with a member given twice.
func TestOwnDocuments(t *testing.T) {
	for _, d := range documents(t) {
		b, err := json.Marshal(d.doc)
		if err != nil {
			t.Fatal(err)
		}
		want := reflect.ValueOf(d.doc)
		if want.Kind() == reflect.Pointer {
			want = want.Elem()
		}
		for name, fn := range map[string]func([]byte, any) error{"v2": strictjson.UnmarshalV2, "compact": strictjson.UnmarshalCompact} {
			got := d.into()
			if err := fn(b, got); err != nil {
				t.Fatalf("%s: %T %s: %v", name, d.doc, b, err)
			}
			if !reflect.DeepEqual(reflect.ValueOf(got).Elem().Interface(), want.Interface()) {
				t.Fatalf("%s: %s decoded to %+v", name, b, got)
			}
			// The first member again, at the end.
			end := bytes.IndexByte(b[1:], ',') + 1
			if end > 0 {
				dup := append(append(bytes.Clone(b[:len(b)-1]), ','), b[1:end]...)
				dup = append(dup, '}')
				if err := fn(dup, d.into()); err == nil {
					t.Errorf("%s: accepted %s", name, dup)
				}
			}
		}
	}
}

// FuzzOwnDocuments checks, on vouch's own document types, that the compact
// implementation (guest functions) accepts exactly what json/v2 accepts,
// as the same value.
func FuzzOwnDocuments(f *testing.F) {
	docs := documents(f)
	for i, d := range docs {
		b, _ := json.Marshal(d.doc)
		f.Add(uint8(i), b)
	}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		d := docs[int(which)%len(docs)]
		v, c := d.into(), d.into()
		err, cerr := strictjson.UnmarshalV2(b, v), strictjson.UnmarshalCompact(b, c)
		if (err == nil) != (cerr == nil) {
			t.Fatalf("%T %q: json/v2 says %v, the compact decoder %v", v, b, err, cerr)
		}
		if err == nil && !reflect.DeepEqual(v, c) {
			t.Fatalf("%T %q: json/v2 decodes %+v, the compact decoder %+v", v, b, v, c)
		}
	})
}
