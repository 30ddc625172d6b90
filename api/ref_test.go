package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/api"
)

var (
	sum    = strings.Repeat("ab", 32)
	pcr48  = strings.Repeat("cd", 48)
	goodID = "oon6qwbwsho4axfeiztp3qb36m"
	key32  = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))
	key16  = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, 16))
	key10  = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 10))
)

// refJSON is a complete reference, as `vouch token -o json` writes it.
func refJSON() string {
	return fmt.Sprintf(`{
  "function_id": %q,
  "function_checksum": %q,
  "function_token": "eyJ.eyJ.sig",
  "enclave_url": "http://127.0.0.1:7070",
  "trust": {
    "platform": "SIMULATED",
    "allow_simulated": true,
    "root_fingerprint": %q,
    "pcrs": {"0": [%q], "2": [%q, %q]},
    "key_id": %q
  },
  "gossip_key": %q,
  "gossip_extra_keys": [%q]
}
`, goodID, sum, sum, pcr48, pcr48, strings.Repeat("ef", 32), sum, key32, key16)
}

// withField returns refJSON with one field of the top level or of trust
// replaced (value is raw JSON), or deleted when value is "".
func withField(t *testing.T, path, value string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(refJSON()), &m); err != nil {
		t.Fatal(err)
	}
	obj := m
	key := path
	if k, ok := strings.CutPrefix(path, "trust."); ok {
		obj, key = m["trust"].(map[string]any), k
	}
	if value == "" {
		delete(obj, key)
	} else {
		var v any
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			t.Fatalf("%s: %v", value, err)
		}
		obj[key] = v
	}
	b, _ := json.Marshal(m)
	return b
}

func TestParseRef(t *testing.T) {
	r, err := api.ParseRef([]byte(refJSON()))
	if err != nil {
		t.Fatal(err)
	}
	want := &api.Ref{FunctionID: goodID, FunctionChecksum: sum, FunctionToken: "eyJ.eyJ.sig", EnclaveURL: "http://127.0.0.1:7070",
		Trust: api.Trust{Platform: "SIMULATED", AllowSimulated: true, RootFingerprint: sum, KeyID: sum,
			PCRs: map[string][]string{"0": {pcr48}, "2": {pcr48, strings.Repeat("ef", 32)}}},
		GossipKey: key32, GossipExtraKeys: []string{key16}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("ParseRef = %+v\nwant %+v", r, want)
	}
	pcrs, err := r.Trust.PCRValues()
	if err != nil || len(pcrs) != 2 || len(pcrs[0]) != 1 || len(pcrs[0][0]) != 48 || len(pcrs[2]) != 2 || len(pcrs[2][1]) != 32 {
		t.Fatalf("PCRValues = %v, %v", pcrs, err)
	}

	// The smallest reference: an ID and a checksum.
	for _, s := range []string{
		fmt.Sprintf(`{"function_id":"f","function_checksum":%q}`, sum),
		fmt.Sprintf(`{"function_id":"f","function_checksum":%q,"trust":{}}`, sum),
		fmt.Sprintf(`{"function_id":"f","function_checksum":%q,"trust":{"platform":"aws-nitro"}}`, sum),
		fmt.Sprintf(`{"function_id":"f","function_checksum":%q,"enclave_url":"https://vouch.example:8443/base/"}`, sum),
		fmt.Sprintf(" \n{\"function_id\":\"%s\",\"function_checksum\":%q}\n\n", strings.Repeat("x", 128), sum),
		fmt.Sprintf(`{"function_id":"f","function_checksum":%q,"trust":{"pcrs":{"31":[%q]}}}`, sum, strings.ToUpper(pcr48)),
		fmt.Sprintf(`{"function_id":"f","function_checksum":%q,"trust":{"pcrs":{"0":[%q]}}}`, sum, strings.Repeat("00", 64)),
	} {
		if _, err := api.ParseRef([]byte(s)); err != nil {
			t.Errorf("ParseRef(%s): %v", s, err)
		}
	}
}

// manyURLs returns a JSON list of n replica URLs, the first the one
// refJSON names.
func manyURLs(n int) string {
	urls := []string{`"http://127.0.0.1:7070"`}
	for i := 1; i < n; i++ {
		urls = append(urls, fmt.Sprintf(`"http://10.0.0.%d:7070"`, i))
	}
	return "[" + strings.Join(urls, ",") + "]"
}

// A reference may list every replica of a runtime: URLs returns them in
// order, and enclave_url alone when there is no list.
func TestRefReplicas(t *testing.T) {
	r, err := api.ParseRef(withField(t, "enclave_urls", manyURLs(api.MaxReplicas)))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.URLs(); len(got) != api.MaxReplicas || got[0] != "http://127.0.0.1:7070" || got[1] != "http://10.0.0.1:7070" {
		t.Errorf("URLs() = %q", got)
	}
	r.URLs()[0] = "changed"
	if r.EnclaveURLs[0] == "changed" {
		t.Error("URLs() returns the reference's own slice")
	}
	// enclave_urls without enclave_url.
	r, err = api.ParseRef(bytes.Replace(withField(t, "enclave_url", ""), []byte(`"function_id"`), []byte(`"enclave_urls":["http://a:1","http://b:1"],"function_id"`), 1))
	if err != nil || strings.Join(r.URLs(), " ") != "http://a:1 http://b:1" {
		t.Errorf("ParseRef without enclave_url: %v, %v", r, err)
	}
	r, _ = api.ParseRef([]byte(refJSON()))
	if got := r.URLs(); len(got) != 1 || got[0] != "http://127.0.0.1:7070" {
		t.Errorf("URLs() of a single runtime = %q", got)
	}
	if got := (&api.Ref{}).URLs(); got != nil {
		t.Errorf("URLs() of a reference without URLs = %q", got)
	}
}

func TestParseRefRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "end of data"},
		{"not an object", []byte(`[]`), "cannot unmarshal"},
		{"null", []byte(`null`), "null is not allowed"},
		{"null trust", withField(t, "trust", `null`), "trust: null is not allowed"},
		{"field given twice", []byte(strings.Replace(refJSON(), `"enclave_url"`, `"function_id": "other", "enclave_url"`, 1)), `field "function_id" given twice`},
		{"upper-case field", []byte(strings.Replace(refJSON(), `"function_token"`, `"FUNCTION_TOKEN"`, 1)), `unknown field "FUNCTION_TOKEN"`},
		{"trailing object", []byte(refJSON() + "{}"), "trailing"},
		{"trailing text", []byte(refJSON() + "x"), "trailing"},
		{"unknown field", withField(t, "function_name", `"leader"`), `unknown field "function_name"`},
		{"unknown trust field", withField(t, "trust.allow_debug", `true`), `unknown field "allow_debug"`},
		{"typo", withField(t, "trust.allowSimulated", `true`), `unknown field "allowSimulated"`},
		{"wrong type", withField(t, "function_id", `5`), "function_id"},
		{"no function_id", withField(t, "function_id", ""), "function_id"},
		{"empty function_id", withField(t, "function_id", `""`), "function_id"},
		{"function_id with a slash", withField(t, "function_id", `"../x"`), "function_id"},
		{"function_id with a space", withField(t, "function_id", `"a b"`), "function_id"},
		{"long function_id", withField(t, "function_id", `"`+strings.Repeat("x", 129)+`"`), "function_id"},
		{"no checksum", withField(t, "function_checksum", ""), "function_checksum"},
		{"short checksum", withField(t, "function_checksum", `"`+sum[:62]+`"`), "function_checksum"},
		{"long checksum", withField(t, "function_checksum", `"`+sum+`00"`), "function_checksum"},
		{"upper-case checksum", withField(t, "function_checksum", `"`+strings.ToUpper(sum)+`"`), "function_checksum"},
		{"non-hex checksum", withField(t, "function_checksum", `"`+strings.Repeat("zz", 32)+`"`), "function_checksum"},
		{"SIMULATED without allow_simulated", withField(t, "trust.allow_simulated", ""), "trust.allow_simulated is not true"},
		{"SIMULATED with allow_simulated false", withField(t, "trust.allow_simulated", "false"), "trust.allow_simulated is not true"},
		{"SIMULATED without a pinned root", withField(t, "trust.root_fingerprint", ""), "trust.allow_simulated needs trust.root_fingerprint"},
		{"allow_simulated for Nitro", withField(t, "trust.platform", `"aws-nitro"`), "applies only to platform"},
		{"allow_simulated without a platform", withField(t, "trust.platform", ""), "applies only to platform"},
		{"platform in lower case", withField(t, "trust.platform", `"simulated"`), `trust.platform "simulated"`},
		{"unknown platform", withField(t, "trust.platform", `"nitro"`), `trust.platform "nitro"`},
		{"bad root fingerprint", withField(t, "trust.root_fingerprint", `"abc"`), "trust.root_fingerprint"},
		{"upper-case root fingerprint", withField(t, "trust.root_fingerprint", `"`+strings.ToUpper(sum)+`"`), "trust.root_fingerprint"},
		{"bad key id", withField(t, "trust.key_id", `"`+sum[:10]+`"`), "trust.key_id"},
		{"PCR index 32", withField(t, "trust.pcrs", `{"32":["`+pcr48+`"]}`), `index "32" is not 0-31`},
		{"PCR index -1", withField(t, "trust.pcrs", `{"-1":["`+pcr48+`"]}`), `index "-1"`},
		{"PCR index word", withField(t, "trust.pcrs", `{"zero":["`+pcr48+`"]}`), `index "zero"`},
		{"PCR index empty", withField(t, "trust.pcrs", `{"":["`+pcr48+`"]}`), `index ""`},
		{"PCR index 01", withField(t, "trust.pcrs", `{"01":["`+pcr48+`"]}`), `index "01"`},
		{"PCR index +1", withField(t, "trust.pcrs", `{"+1":["`+pcr48+`"]}`), `index "+1"`},
		{"PCR index with space", withField(t, "trust.pcrs", `{" 1":["`+pcr48+`"]}`), `index " 1"`},
		{"PCR index huge", withField(t, "trust.pcrs", `{"99999999999999999999":["`+pcr48+`"]}`), "index"},
		{"PCR without values", withField(t, "trust.pcrs", `{"0":[]}`), "trust.pcrs[0] lists no values"},
		{"PCR null values", withField(t, "trust.pcrs", `{"0":null}`), "trust.pcrs[0] lists no values"},
		{"PCR value not hex", withField(t, "trust.pcrs", `{"0":["`+strings.Repeat("xy", 48)+`"]}`), "trust.pcrs[0]"},
		{"PCR value odd length", withField(t, "trust.pcrs", `{"0":["`+pcr48+`0"]}`), "trust.pcrs[0]"},
		{"PCR value 16 bytes", withField(t, "trust.pcrs", `{"0":["`+strings.Repeat("00", 16)+`"]}`), "32, 48 or 64-byte"},
		{"PCR value empty", withField(t, "trust.pcrs", `{"0":[""]}`), "trust.pcrs[0]"},
		{"PCR values not a list", withField(t, "trust.pcrs", `{"0":"`+pcr48+`"}`), "cannot unmarshal"},
		{"URL without scheme", withField(t, "enclave_url", `"127.0.0.1:7070"`), "enclave_url"},
		{"URL of another scheme", withField(t, "enclave_url", `"ftp://host/"`), "enclave_url"},
		{"URL without host", withField(t, "enclave_url", `"http://"`), "enclave_url"},
		{"URL path only", withField(t, "enclave_url", `"/v1"`), "enclave_url"},
		{"not a URL", withField(t, "enclave_url", `"http://a b"`), "enclave_url"},
		{"replica listed twice", withField(t, "enclave_urls", `["http://127.0.0.1:7070","http://b:7070","http://b:7070"]`), `enclave_urls lists "http://b:7070" twice`},
		{"replica not http", withField(t, "enclave_urls", `["http://127.0.0.1:7070","ftp://b"]`), "enclave_urls[1]"},
		{"replica without host", withField(t, "enclave_urls", `["http://127.0.0.1:7070","http://"]`), "enclave_urls[1]"},
		{"enclave_url not the first replica", withField(t, "enclave_urls", `["http://b:7070","http://127.0.0.1:7070"]`), "must be the first of enclave_urls"},
		{"too many replicas", withField(t, "enclave_urls", manyURLs(api.MaxReplicas+1)), "at most"},
		{"empty replica list", withField(t, "enclave_urls", `[]`), "enclave_urls is an empty list"},
		{"replicas not a list", withField(t, "enclave_urls", `"http://b:7070"`), "enclave_urls"},
		{"gossip key not base64", withField(t, "gossip_key", `"not base64!"`), "gossip_key: malformed gossip key"},
		{"gossip key short", withField(t, "gossip_key", `"`+key10+`"`), "gossip_key: malformed gossip key: 10 bytes"},
		{"gossip key unpadded", withField(t, "gossip_key", `"`+strings.TrimRight(key16, "=")+`"`), "gossip_key: malformed gossip key"},
		{"gossip key with a newline", withField(t, "gossip_key", `"`+key32[:8]+`\n`+key32[8:]+`"`), "gossip_key: malformed gossip key"},
		{"gossip key not a string", withField(t, "gossip_key", `32`), "gossip_key"},
		{"extra key without a key", withField(t, "gossip_key", ""), "gossip_extra_keys without a gossip_key"},
		{"extra key malformed", withField(t, "gossip_extra_keys", `["`+key16+`","`+key10+`"]`), "gossip_extra_keys[1]: malformed gossip key: 10 bytes"},
		{"oversize", append([]byte(refJSON()), bytes.Repeat([]byte(" "), api.MaxRefSize)...), "larger than 65536 bytes"},
	} {
		r, err := api.ParseRef(tc.data)
		if err == nil || r != nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "function reference") {
			t.Errorf("%s: ParseRef = %+v, %v; want an error mentioning %q", tc.name, r, err, tc.want)
		}
	}
}

// TestParseRefTrailingBrackets: a stray closing bracket after the object is
// trailing data like any other.
func TestParseRefTrailingBrackets(t *testing.T) {
	for _, s := range []string{refJSON() + "}", refJSON() + "]"} {
		if _, err := api.ParseRef([]byte(s)); err == nil {
			t.Errorf("ParseRef accepted %q: trailing data", s[len(s)-3:])
		}
	}
}

func TestLoadRef(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "ref.json")
	if err := os.WriteFile(good, []byte(refJSON()), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := api.LoadRef(good)
	if err != nil || r.FunctionID != goodID {
		t.Fatalf("LoadRef: %+v, %v", r, err)
	}
	parsed, _ := api.ParseRef([]byte(refJSON()))
	a, _ := json.Marshal(r)
	b, _ := json.Marshal(parsed)
	if !bytes.Equal(a, b) {
		t.Fatal("LoadRef and ParseRef disagree")
	}
	if err := r.FileWarning(); err != nil {
		t.Errorf("a 0600 reference: FileWarning = %v", err)
	}
	if err := parsed.FileWarning(); err != nil {
		t.Errorf("a parsed reference: FileWarning = %v", err)
	}
	// A reference that others can read still loads, with a warning that
	// names the file, its mode and the fix.
	if runtime.GOOS != "windows" {
		for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
			if err := os.Chmod(good, mode); err != nil {
				t.Fatal(err)
			}
			r, err := api.LoadRef(good)
			if err != nil {
				t.Fatal(err)
			}
			w := r.FileWarning()
			if !errors.Is(w, api.ErrRefReadable) || !strings.Contains(w.Error(), fmt.Sprintf("mode %04o", mode)) || !strings.Contains(w.Error(), "chmod 600 "+good) {
				t.Errorf("mode %04o: FileWarning = %v", mode, w)
			}
		}
	}

	if _, err := api.LoadRef(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	for name, data := range map[string][]byte{
		"unknown.json":   withField(t, "extra", `1`),
		"simulated.json": withField(t, "trust.allow_simulated", ""),
		"pcr.json":       withField(t, "trust.pcrs", `{"40":["`+pcr48+`"]}`),
		"url.json":       withField(t, "enclave_url", `"localhost:7070"`),
		"big.json":       append([]byte(refJSON()), bytes.Repeat([]byte("\n"), api.MaxRefSize)...),
		"empty.json":     nil,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if r, err := api.LoadRef(p); err == nil || r != nil || !strings.Contains(err.Error(), "function reference "+p) {
			t.Errorf("LoadRef(%s) = %+v, %v; want an error naming the file", name, r, err)
		}
	}
	// A directory is not a reference.
	if _, err := api.LoadRef(dir); err == nil {
		t.Error("LoadRef of a directory succeeded")
	}
}

func TestTrustCheck(t *testing.T) {
	for _, tc := range []struct {
		trust api.Trust
		ok    bool
	}{
		{api.Trust{}, true},
		{api.Trust{Platform: "aws-nitro"}, true},
		{api.Trust{Platform: "SIMULATED", AllowSimulated: true, RootFingerprint: sum}, true},
		{api.Trust{Platform: "SIMULATED", AllowSimulated: true}, false}, // any simulated root: never
		{api.Trust{Platform: "SIMULATED", RootFingerprint: sum}, false},
		{api.Trust{AllowSimulated: true, RootFingerprint: sum}, false},
		{api.Trust{Platform: "SIMULATED"}, false},
		{api.Trust{Platform: "aws-nitro", PCRs: map[string][]string{}}, true},
		{api.Trust{PCRs: map[string][]string{"0": {pcr48}, "31": {pcr48}}}, true},
		{api.Trust{PCRs: map[string][]string{"1": {pcr48}, "01": {pcr48}}}, false},
		{api.Trust{KeyID: sum, RootFingerprint: sum}, true},
		{api.Trust{KeyID: "00"}, false},
	} {
		if err := tc.trust.Check(); (err == nil) != tc.ok {
			t.Errorf("%+v.Check() = %v, want ok=%v", tc.trust, err, tc.ok)
		}
	}
	if v, err := (&api.Trust{}).PCRValues(); v != nil || err != nil {
		t.Errorf("PCRValues of no PCRs = %v, %v", v, err)
	}
}

func FuzzParseRef(f *testing.F) {
	f.Add([]byte(refJSON()))
	f.Add([]byte(fmt.Sprintf(`{"function_id":"f","function_checksum":%q}`, sum)))
	f.Add([]byte(fmt.Sprintf(`{"function_id":"f","function_checksum":%q,"trust":{"pcrs":{"7":[%q]}}}`, sum, pcr48)))
	f.Add([]byte(`{"function_id":"f","function_checksum":"00"}`))
	f.Add([]byte(fmt.Sprintf(`{"function_id":"f","function_checksum":%q,"enclave_url":"http://a:1","enclave_urls":["http://a:1","https://b/x"]}`, sum)))
	f.Add([]byte(`null`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := api.ParseRef(data)
		if err != nil {
			if r != nil {
				t.Fatal("a reference and an error")
			}
			return
		}
		if err := r.Check(); err != nil {
			t.Fatalf("ParseRef accepted a reference that fails Check: %v", err)
		}
		if _, err := r.Trust.PCRValues(); err != nil {
			t.Fatal(err)
		}
		// What is accepted re-encodes to an equivalent reference.
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := api.ParseRef(b)
		if err != nil {
			t.Fatalf("%s re-encodes as %s, which is refused: %v", data, b, err)
		}
		if !reflect.DeepEqual(normalize(back), normalize(r)) {
			t.Fatalf("%+v re-parses as %+v", r, back)
		}
	})
}

// normalize makes an empty PCR map and a nil one compare equal (omitempty
// drops an empty map).
func normalize(r *api.Ref) *api.Ref {
	c := *r
	if len(c.Trust.PCRs) == 0 {
		c.Trust.PCRs = nil
	}
	if len(c.GossipExtraKeys) == 0 {
		c.GossipExtraKeys = nil
	}
	return &c
}

func TestWriteRefFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "leader_election.json")
	r, err := api.ParseRef([]byte(refJSON()))
	if err != nil {
		t.Fatal(err)
	}
	if err := api.WriteRefFile(path, r, false); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("written with mode %04o, want 0600", fi.Mode().Perm())
	}
	back, err := api.LoadRef(path)
	if err != nil || back.FunctionToken != r.FunctionToken || back.Trust.RootFingerprint != r.Trust.RootFingerprint || back.FileWarning() != nil {
		t.Fatalf("LoadRef of the written file: %+v, %v", back, err)
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasSuffix(data, []byte("}\n")) || !bytes.Contains(data, []byte("\n  \"function_id\"")) {
		t.Errorf("not indented JSON with a final newline:\n%s", data)
	}

	// An existing file is never replaced without overwrite, and keeps its
	// contents.
	other := *r
	other.FunctionToken = "eyJ.other.sig"
	err = api.WriteRefFile(path, &other, false)
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second write: %v, want fs.ErrExist naming the file", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
		t.Fatal("a refused write changed the file")
	}
	// With overwrite it is replaced, still 0600, even over a loose file.
	if runtime.GOOS != "windows" {
		os.Chmod(path, 0o644)
	}
	if err := api.WriteRefFile(path, &other, true); err != nil {
		t.Fatal(err)
	}
	back, err = api.LoadRef(path)
	if err != nil || back.FunctionToken != "eyJ.other.sig" || back.FileWarning() != nil {
		t.Fatalf("after overwrite: %+v, %v, %v", back, err, back.FileWarning())
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(ents))
	}
	// An invalid reference is not written.
	bad := *r
	bad.FunctionChecksum = "00"
	if err := api.WriteRefFile(filepath.Join(dir, "bad.json"), &bad, false); err == nil {
		t.Error("wrote an invalid reference")
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("an invalid reference left a file")
	}
	// A missing directory is an error, not a crash.
	if err := api.WriteRefFile(filepath.Join(dir, "no", "such", "ref.json"), r, false); err == nil {
		t.Error("wrote into a missing directory")
	}
}
