package join

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// The join vectors of docs/FORMATS.md, "Join protocol": the test checks the
// code against them and that the document still shows them.
func TestVectors(t *testing.T) {
	nonce, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	a := Admission{ReplicaID: "replica-2", RaftAddr: "10.0.0.2:7001", APIURL: "https://replica-2.example:7443"}
	want := map[string]string{
		"user_data": "0000000d766f7563682f6a6f696e2f7631000000097265706c6963612d320000000d31302e302e302e323a373030310000001e68747470733a2f2f7265706c6963612d322e6578616d706c653a37343433",
		"keys info": "00000012766f7563682f6a6f696e2f6b6579732f7631000000097265706c6963612d3200000020000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
	}
	got := map[string]string{
		"user_data": hex.EncodeToString(userData(a)),
		"keys info": hex.EncodeToString(keysInfo(a.ReplicaID, nonce)),
	}
	if back, err := parseUserData(userData(a)); err != nil || back != a {
		t.Fatalf("parseUserData(userData(a)) = %+v, %v", back, err)
	}
	doc, err := os.ReadFile("../../../docs/FORMATS.md")
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(string(doc)), "")
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s is\n%s\nthe documented vector is\n%s", name, got[name], w)
		}
		if !strings.Contains(flat, w) {
			t.Errorf("docs/FORMATS.md no longer shows the %s vector %s", name, w)
		}
	}
}
