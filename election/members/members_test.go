package members

import (
	"errors"
	"fmt"
	"slices"
	"strings"
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

// referenceNew is New as it was before its one-pass check of ordered
// lists: validate each ID, sort, then look for neighbours that are equal.
func referenceNew(ids []string) ([]string, bool, error) {
	out, numeric := slices.Clone(ids), true
	for _, id := range out {
		if err := ValidID(id); err != nil {
			return nil, false, err
		}
		for i := 0; i < len(id); i++ {
			if id[i] < '0' || id[i] > '9' {
				numeric = false
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		if numeric {
			if c := CompareNumeric(a, b); c != 0 {
				return c
			}
		}
		return strings.Compare(a, b)
	})
	for i := 1; i < len(out); i++ {
		if out[i] == out[i-1] {
			return nil, false, fmt.Errorf("%w: duplicate member ID %q", ErrInvalid, out[i])
		}
	}
	return out, numeric, nil
}

// FuzzNewAgrees checks that New gives the reference's set, or its error,
// for lists in order, out of order and with duplicates.
func FuzzNewAgrees(f *testing.F) {
	f.Add("5000", "5001", "5002", "")
	f.Add("007", "7", "8", "")
	f.Add("9", "10", "10", "a")
	f.Add("0", "00", "1", "b c")
	f.Fuzz(func(t *testing.T, a, b, c, d string) {
		for _, in := range [][]string{{a, b, c}, {c, b, a}, {a, b, c, d}, {d, a, b, c}} {
			if in[len(in)-1] == "" && len(in) == 4 {
				in = in[:3]
			}
			want, wantNumeric, wantErr := referenceNew(in)
			s, err := New(in)
			if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
				t.Fatalf("New(%q) error %v, reference %v", in, err, wantErr)
			}
			if err == nil && (!slices.Equal(s.IDs(), want) || s.Numeric() != wantNumeric) {
				t.Fatalf("New(%q) = %q (numeric %v), reference %q (%v)", in, s.IDs(), s.Numeric(), want, wantNumeric)
			}
		}
	})
}
