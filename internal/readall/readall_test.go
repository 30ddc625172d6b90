package readall

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSized(t *testing.T) {
	body := strings.Repeat("vouch", 1000)
	for _, size := range []int64{-1, 0, 1, int64(len(body)) - 1, int64(len(body)), int64(len(body)) + 10} {
		for name, r := range map[string]io.Reader{
			"whole":    strings.NewReader(body),
			"one byte": iotest.OneByteReader(strings.NewReader(body)),
			"half":     iotest.HalfReader(strings.NewReader(body)),
		} {
			got, err := Sized(r, size)
			if err != nil || string(got) != body {
				t.Fatalf("size %d, %s: %d bytes, %v", size, name, len(got), err)
			}
		}
	}
	boom := errors.New("boom")
	got, err := Sized(io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom)), 10)
	if !errors.Is(err, boom) || !bytes.Equal(got, []byte("abc")) {
		t.Fatalf("%q, %v", got, err)
	}
}
