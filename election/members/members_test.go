package members

import (
	"errors"
	"slices"
	"testing"
)

func TestOrdering(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		want    []string
		highest string
	}{
		{[]string{"5001", "5000", "5002"}, []string{"5000", "5001", "5002"}, "5002"},
		{[]string{"9", "10", "100"}, []string{"9", "10", "100"}, "100"}, // numeric, not byte-wise
		{[]string{"9", "10", "a"}, []string{"10", "9", "a"}, "a"},       // one non-number: byte-wise
		{[]string{"007", "7", "6"}, []string{"6", "007", "7"}, "7"},     // equal numbers: byte-wise tie-break
		{[]string{"node-b", "node-a"}, []string{"node-a", "node-b"}, "node-b"},
		{[]string{"only"}, []string{"only"}, "only"},
	} {
		s, err := New(tc.in)
		if err != nil {
			t.Fatalf("New(%q): %v", tc.in, err)
		}
		if !slices.Equal(s.IDs(), tc.want) || s.Highest() != tc.highest {
			t.Errorf("New(%q) = %q highest %q, want %q highest %q", tc.in, s.IDs(), s.Highest(), tc.want, tc.highest)
		}
		for _, id := range tc.in {
			if !s.Contains(id) {
				t.Errorf("Contains(%q) = false", id)
			}
		}
		if s.Contains("nope") {
			t.Error("Contains(nope) = true")
		}
	}
}

func TestInvalid(t *testing.T) {
	for _, in := range [][]string{
		nil, {}, {"a", "a"}, {"5000", "5000"}, {""}, {"has space"}, {"tab\t"}, {"é"},
		{string(make([]byte, MaxIDLen+1))},
	} {
		if _, err := New(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("New(%q) error = %v, want ErrInvalid", in, err)
		}
	}
}

func TestDigest(t *testing.T) {
	s, _ := New([]string{"5002", "5000", "5001"})
	// printf '5000\n5001\n5002' | sha256sum
	const want = "b0b68d797edfd8f4eabb59e224a78aa3866e6fb5075aaafa3f1446faf156a1f8"
	if got := s.Digest(); got != want {
		t.Fatalf("digest = %s, want %s", got, want)
	}
}

func TestValidCluster(t *testing.T) {
	for _, ok := range []string{"demo", "a.b_c-1"} {
		if ValidCluster(ok) != nil {
			t.Errorf("ValidCluster(%q) failed", ok)
		}
	}
	for _, bad := range []string{"", "sp ace", "x/y", string(make([]byte, 65))} {
		if ValidCluster(bad) == nil {
			t.Errorf("ValidCluster(%q) passed", bad)
		}
	}
}

func FuzzNew(f *testing.F) {
	f.Add("5000", "5001", "x")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		s, err := New([]string{a, b, c})
		if err != nil {
			return
		}
		ids := s.IDs()
		for i := 1; i < len(ids); i++ {
			if s.compare(ids[i-1], ids[i]) >= 0 {
				t.Fatalf("not strictly sorted: %q", ids)
			}
		}
		if s.Highest() != ids[len(ids)-1] {
			t.Fatal("highest is not last")
		}
	})
}
