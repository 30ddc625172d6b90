package strictjson

import "testing"

func TestUnmarshal(t *testing.T) {
	var v struct{ A int }
	for _, bad := range []string{`{"A":1,"B":2}`, `{"A":1} {}`, `{"A":1}}`, `{"A":1}]`, `{"A":1} x`, `{"A":"x"}`, ``, `[`} {
		if Unmarshal([]byte(bad), &v) == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if err := Unmarshal([]byte(` {"A":1} `), &v); err != nil || v.A != 1 {
		t.Fatalf("%v %+v", err, v)
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte(`{"A":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var v struct {
			A int
			B []string
		}
		Unmarshal(b, &v)
	})
}
