package api_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/election/members"
	"github.com/vouch-dev/vouch/sandbox"
	"github.com/vouch-dev/vouch/seal"
)

// The known-answer vectors of the wire formats around the API live in
// testdata/vectors: bundle.json (a deploy request's body and the bundle
// checksum), members.json (the members digest of the leader function's
// output) and identity.json (the user_data of an attestation document). See
// docs/FORMATS.md. Rebuild them after a deliberate format change with:
//
//	go test ./api -run TestVectors -update
var update = flag.Bool("update", false, "rewrite the vector files in testdata/vectors")

const vectorDir = "../testdata/vectors"

// noopModule is the smallest useful WASI command: one memory, and a _start
// that returns at once. The runtime deploys and runs it (its output is
// empty).
const noopModule = "0061736d01000000" + // magic, version 1
	"010401600000" + // type section: () -> ()
	"03020100" + // function section: func 0 has type 0
	"0503010001" + // memory section: one memory, min 1 page
	"071302065f73746172740000066d656d6f72790200" + // export _start (func 0), memory (memory 0)
	"0a040102000b" // code section: func 0 is `end`

type bundleCase struct {
	Name         string  `json:"name"`
	ModuleHex    string  `json:"module_hex"`
	ManifestText *string `json:"manifest_text"` // null: no vouch.json
	ManifestHex  *string `json:"manifest_hex"`
	EncodingHex  string  `json:"encoding_hex"`
	Checksum     string  `json:"checksum"`
}

type bundleVectors struct {
	Description string       `json:"description"`
	Cases       []bundleCase `json:"cases"`
}

type membersCase struct {
	Name        string   `json:"name"`
	NodeList    []string `json:"node_list"`
	Numeric     bool     `json:"numeric"`
	Members     []string `json:"members"`
	Leader      string   `json:"leader"`
	DigestInput string   `json:"digest_input"`
	Digest      string   `json:"members_digest"`
}

type membersVectors struct {
	Description string        `json:"description"`
	Cases       []membersCase `json:"cases"`
}

type identityVector struct {
	Description       string `json:"description"`
	Ed25519Seed       string `json:"ed25519_seed"`
	ReceiptKey        string `json:"receipt_key"`
	KeyID             string `json:"key_id"`
	X25519PrivateKey  string `json:"x25519_private_key"`
	HPKEKey           string `json:"hpke_key"`
	UserDataHex       string `json:"user_data_hex"`
	AttestationFields string `json:"attestation_fields"`
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	p, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// lp is the documented length prefix: 4 bytes big-endian, then the bytes.
func lp(b, p []byte) []byte {
	return append(binary.BigEndian.AppendUint32(b, uint32(len(p))), p...)
}

func ptr(s string) *string { return &s }

func TestVectors(t *testing.T) {
	t.Run("bundle", testBundleVectors)
	t.Run("members", testMembersVectors)
	t.Run("identity", testIdentityVector)
}

func testBundleVectors(t *testing.T) {
	module := unhex(t, noopModule)
	// The module is real: the sandbox loads it as a command and runs it.
	eng, err := sandbox.NewEngine(sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(t.Context())
	fn, err := eng.Load(t.Context(), module, bundle.DefaultLimits)
	if err != nil {
		t.Fatalf("the sandbox refuses the vector module: %v", err)
	}
	defer fn.Close(t.Context())
	if res, err := fn.Invoke(t.Context(), []byte("ignored"), nil); err != nil || len(res.Output) != 0 || fn.Mode() != sandbox.ModeCommand {
		t.Fatalf("running the vector module: %v", err)
	}
	manifest := "{\"name\":\"noop\",\"allow_plaintext_input\":true}\n"
	v := bundleVectors{
		Description: "Function bundles (docs/FORMATS.md, \"Function bundles\"): encoding = String(\"vouch/bundle/v1\") Uint64(n) " +
			"then n times String(name) Bytes(content), files sorted by name (function.wasm, then vouch.json); " +
			"checksum = lowercase hex SHA-256 of the encoding. manifest_text null means the bundle has no vouch.json. " +
			"`vouch checksum` of a folder holding the module (any name ending in .wasm) and the manifest as vouch.json prints the checksum.",
	}
	for _, c := range []struct {
		name     string
		manifest *string
	}{
		{"module only (a .wasm file)", nil},
		{"module and vouch.json (the manifest's exact bytes, final newline included)", &manifest},
	} {
		var raw []byte
		if c.manifest != nil {
			raw = []byte(*c.manifest)
		}
		b, err := bundle.New(module, raw)
		if err != nil {
			t.Fatal(err)
		}
		enc := b.Encode()
		// The encoding as docs/FORMATS.md describes it, built by hand.
		var want []byte
		want = lp(want, []byte(bundle.Tag))
		n := uint64(1)
		if raw != nil {
			n = 2
		}
		want = binary.BigEndian.AppendUint64(want, n)
		want = lp(lp(want, []byte("function.wasm")), module)
		if raw != nil {
			want = lp(lp(want, []byte("vouch.json")), raw)
		}
		if !bytes.Equal(enc, want) {
			t.Fatalf("%s: bundle encodes as\n%x\nthe documented layout gives\n%x", c.name, enc, want)
		}
		sum := sha256.Sum256(want)
		if b.Checksum() != hex.EncodeToString(sum[:]) {
			t.Fatalf("%s: checksum %s is not the SHA-256 of the encoding", c.name, b.Checksum())
		}
		// A deploy request body decodes to the same bundle.
		back, err := bundle.Decode(enc)
		if err != nil || !bytes.Equal(back.Encode(), enc) {
			t.Fatalf("%s: decoding the encoding: %v", c.name, err)
		}
		// The checksum of a folder does not depend on its name or the
		// module's file name.
		dir := filepath.Join(t.TempDir(), "any-folder-name")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "whatever.wasm"), module, 0o644); err != nil {
			t.Fatal(err)
		}
		if raw != nil {
			if err := os.WriteFile(filepath.Join(dir, "vouch.json"), raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		loaded, err := bundle.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if loaded.Checksum() != b.Checksum() {
			t.Fatalf("%s: folder checksum %s, want %s", c.name, loaded.Checksum(), b.Checksum())
		}
		bc := bundleCase{Name: c.name, ModuleHex: noopModule, ManifestText: c.manifest, EncodingHex: hex.EncodeToString(enc), Checksum: b.Checksum()}
		if c.manifest != nil {
			bc.ManifestHex = ptr(hex.EncodeToString(raw))
		}
		v.Cases = append(v.Cases, bc)
	}
	checkVectorFile(t, "bundle.json", v)
}

func testMembersVectors(t *testing.T) {
	v := membersVectors{
		Description: "Members digest (docs/FORMATS.md, \"Members digest\"): when every ID is decimal digits the IDs sort by " +
			"numeric value, otherwise byte-wise; equal numbers spelled differently fall back to byte-wise order. leader is the " +
			"last member. members_digest is the lowercase hex SHA-256 of digest_input: the sorted IDs joined by \"\\n\", no final newline.",
	}
	for _, c := range []struct {
		name string
		ids  []string
	}{
		{"numeric IDs sort by value", []string{"5002", "5000", "5001"}},
		{"numeric beats byte-wise: 10 after 9", []string{"10", "9", "100", "11"}},
		{"equal numbers fall back to byte-wise", []string{"7", "007", "10", "07"}},
		{"one non-numeric ID makes the order byte-wise", []string{"10", "9", "node-b", "Node-a"}},
		{"a single member", []string{"n1"}},
	} {
		set, err := members.New(c.ids)
		if err != nil {
			t.Fatal(err)
		}
		joined := strings.Join(set.IDs(), "\n")
		sum := sha256.Sum256([]byte(joined))
		if set.Digest() != hex.EncodeToString(sum[:]) {
			t.Fatalf("%s: digest %s is not the SHA-256 of the joined IDs", c.name, set.Digest())
		}
		v.Cases = append(v.Cases, membersCase{
			Name: c.name, NodeList: c.ids, Numeric: set.Numeric(), Members: set.IDs(),
			Leader: set.Highest(), DigestInput: joined, Digest: set.Digest(),
		})
	}
	checkVectorFile(t, "members.json", v)
}

func testIdentityVector(t *testing.T) {
	// RFC 8032 TEST 1 for the receipt key, RFC 7748 section 6.1 (Alice) for
	// the HPKE key.
	seed := unhex(t, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	receiptKey := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	hpkePriv := unhex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	hk, err := seal.NewPrivateKey(hpkePriv)
	if err != nil {
		t.Fatal(err)
	}
	hpkeKey := hk.PublicKey()
	ud := api.IdentityUserData(receiptKey, hpkeKey)
	var want []byte
	want = lp(want, []byte(api.IdentityTag))
	want = lp(want, receiptKey)
	want = lp(want, hpkeKey)
	if !bytes.Equal(ud, want) {
		t.Fatalf("user_data is\n%x\nthe documented layout gives\n%x", ud, want)
	}
	rk, hk2, _, err := api.ParseIdentityUserData(ud)
	if err != nil || !bytes.Equal(rk, receiptKey) || !bytes.Equal(hk2, hpkeKey) {
		t.Fatalf("ParseIdentityUserData: %v", err)
	}
	keySum := sha256.Sum256(receiptKey)
	checkVectorFile(t, "identity.json", identityVector{
		Description: "Runtime identity (docs/FORMATS.md, \"Runtime identity\"): the user_data of the runtime's attestation " +
			"document is String(\"vouch/identity/v1\") Bytes(receipt_key) Bytes(hpke_key). The keys are RFC 8032 TEST 1 " +
			"(Ed25519) and RFC 7748 section 6.1 Alice (X25519).",
		Ed25519Seed:       hex.EncodeToString(seed),
		ReceiptKey:        hex.EncodeToString(receiptKey),
		KeyID:             hex.EncodeToString(keySum[:]),
		X25519PrivateKey:  hex.EncodeToString(hpkePriv),
		HPKEKey:           hex.EncodeToString(hpkeKey),
		UserDataHex:       hex.EncodeToString(ud),
		AttestationFields: "public_key = receipt_key (32 bytes); user_data = user_data_hex; nonce = the client's nonce",
	})
}

// checkVectorFile compares v, as indented JSON, with the committed file
// byte for byte, or rewrites the file with -update.
func checkVectorFile(t *testing.T, name string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(vectorDir, name)
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	committed, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it with: go test ./api -run TestVectors -update)", err)
	}
	if !bytes.Equal(committed, buf.Bytes()) {
		t.Fatalf("%s differs from what the code computes now:\n--- committed\n%s\n--- computed\n%s\n"+
			"If the format changed on purpose, rerun with -update and document the change in docs/FORMATS.md.",
			path, committed, buf.Bytes())
	}
}
