package main

// End-to-end tests: they build the vouch binary once, start real
// `vouch enclave` processes on loopback ports and drive the CLI with exec,
// checking stdout, stderr and exit codes, as a user at a terminal would.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/functions"
	"github.com/vouch-dev/vouch/receipt"
)

const leaderInput = `{"cluster":"demo","node_list":["5000","5001","5002"]}`

var (
	binDir   string // TestMain's temporary directory
	binOnce  sync.Once
	binPath  string
	binErr   error
	baseEnv  []string // the environment without any VOUCH_ variable
	idRE     = regexp.MustCompile(`(?m)^Function ID ➜ ([a-z0-9]+)$`)
	sumRE    = regexp.MustCompile(`(?m)^Function Checksum ➜ ([0-9a-f]{64})$`)
	ownerRE  = regexp.MustCompile(`vouch_owner_[A-Za-z0-9_-]{43}`)
	e2eLimit = 45 * time.Second // the longest any single step may take
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "vouch-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VOUCH_") {
			baseEnv = append(baseEnv, kv)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// vouchBin builds the vouch binary, once per test process, and returns its
// path. Tests that do not need a process never pay for the build.
func vouchBin(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: builds and runs the vouch binary")
	}
	binOnce.Do(func() {
		binPath = filepath.Join(binDir, "vouch")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// result is a finished CLI invocation.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("vouch %s\nexit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// cli runs the vouch binary in dir with the environment baseEnv+env.
type cli struct {
	t   *testing.T
	dir string
	env []string
}

func newCLI(t *testing.T, dir string, env ...string) *cli {
	return &cli{t: t, dir: dir, env: env}
}

// with returns a cli with more environment variables.
func (c *cli) with(env ...string) *cli {
	return &cli{t: c.t, dir: c.dir, env: append(append([]string(nil), c.env...), env...)}
}

// in returns a cli that runs in another directory.
func (c *cli) in(dir string) *cli {
	return &cli{t: c.t, dir: dir, env: c.env}
}

func (c *cli) runStdin(stdin string, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, vouchBin(c.t), args...)
	cmd.Dir = c.dir
	cmd.Env = append(append([]string(nil), baseEnv...), c.env...)
	cmd.WaitDelay = 5 * time.Second
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		c.t.Fatalf("vouch %s: %v (within %v)\nstderr: %s", strings.Join(args, " "), err, e2eLimit, stderr.String())
	}
	return r
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	return c.runStdin("", args...)
}

// ok runs vouch and fails the test unless it exits 0.
func (c *cli) ok(args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("want exit 0, got:\n%s", r)
	}
	return r
}

// fail runs vouch and fails the test unless it exits with code and its
// stderr has every one of want.
func (c *cli) fail(code int, want []string, args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != code {
		c.t.Fatalf("want exit %d, got:\n%s", code, r)
	}
	if code != 0 && !strings.HasPrefix(lastLines(r.stderr), "vouch: error: ") {
		c.t.Errorf("stderr does not report the error as `vouch: error: …`:\n%s", r)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			c.t.Errorf("stderr lacks %q:\n%s", w, r)
		}
	}
	return r
}

// lastLines returns the stderr lines from the first "vouch: error:" on
// (flag's own usage text may come before it).
func lastLines(s string) string {
	if i := strings.Index(s, "vouch: error: "); i >= 0 {
		return s[i:]
	}
	return s
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// enclaveProc is a running `vouch enclave`.
type enclaveProc struct {
	t       *testing.T
	url     string
	port    int
	dir     string // working directory
	data    string // --data, or "" for the default
	env     []string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	outPath string // stdout
	errPath string // stderr
}

// startEnclave starts `vouch enclave` in dir on a free port (or on port,
// if not 0) and waits until /healthz answers. data == "" leaves --data out.
func startEnclave(t *testing.T, dir, data string, port int, env []string, extra ...string) *enclaveProc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p := port
		if p == 0 {
			p = freePort(t)
		}
		e, err := tryStartEnclave(t, dir, data, p, env, extra...)
		if err == nil {
			return e
		}
		// Another process may have taken the port between freePort and
		// the runtime's listen; try again, boundedly.
		if attempt < 20 && strings.Contains(err.Error(), "address already in use") {
			if port != 0 {
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		t.Fatal(err)
	}
}

func tryStartEnclave(t *testing.T, dir, data string, port int, env []string, extra ...string) (*enclaveProc, error) {
	t.Helper()
	logs := t.TempDir()
	e := &enclaveProc{t: t, port: port, dir: dir, data: data, env: env, done: make(chan struct{}),
		url:     fmt.Sprintf("https://127.0.0.1:%d", port),
		outPath: filepath.Join(logs, "stdout"), errPath: filepath.Join(logs, "stderr")}
	args := []string{"enclave"}
	if len(extra) >= 2 && extra[0] == "join" { // vouch enclave join URL
		args, extra = append(args, extra[:2]...), extra[2:]
	}
	args = append(args, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	if data != "" {
		args = append(args, "--data", data)
	}
	args = append(args, extra...)
	if slices.Contains(extra, "--insecure-http") {
		e.url = "http" + strings.TrimPrefix(e.url, "https")
	}
	// Files rather than pipes: what the runtime wrote before it answered
	// /healthz is in them by the time the test reads them.
	stdout, err := os.Create(e.outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(e.errPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	e.cmd = exec.Command(vouchBin(t), args...)
	e.cmd.Dir = dir
	e.cmd.Env = append(append([]string(nil), baseEnv...), env...)
	e.cmd.Stdout, e.cmd.Stderr = stdout, stderr
	dieWithTest(e.cmd)
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		e.waitErr = e.cmd.Wait()
		close(e.done)
	}()
	t.Cleanup(func() {
		e.kill()
		if t.Failed() {
			t.Logf("stderr of vouch %s:\n%s", strings.Join(args, " "), e.stderr())
		}
	})
	// /healthz says nothing secret: no need to pin the attested TLS key.
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(e2eLimit)
	for {
		select {
		case <-e.done:
			return nil, fmt.Errorf("vouch %s exited before it was ready (%v):\n%s", strings.Join(args, " "), e.waitErr, e.stderr())
		default:
		}
		resp, err := hc.Get(e.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return e, nil
			}
		}
		if time.Now().After(deadline) {
			e.kill()
			return nil, fmt.Errorf("vouch enclave on port %d not healthy within %v (last error %v):\n%s", port, e2eLimit, err, e.stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *enclaveProc) stderr() string {
	b, _ := os.ReadFile(e.errPath)
	return string(b)
}

func (e *enclaveProc) stdout() string {
	b, _ := os.ReadFile(e.outPath)
	return string(b)
}

// kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (e *enclaveProc) kill() {
	select {
	case <-e.done:
		return
	default:
	}
	e.cmd.Process.Signal(syscall.SIGKILL)
	<-e.done
}

// stop sends SIGTERM and waits, boundedly, for a clean exit.
func (e *enclaveProc) stop() {
	e.t.Helper()
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
		if e.waitErr != nil {
			e.t.Errorf("vouch enclave exited with %v after SIGTERM:\n%s", e.waitErr, e.stderr())
		}
	case <-time.After(e2eLimit):
		e.kill()
		e.t.Fatalf("vouch enclave did not exit within %v of SIGTERM", e2eLimit)
	}
}

// restart starts a new runtime process on the same directory, data and
// port.
func (e *enclaveProc) restart() *enclaveProc {
	e.t.Helper()
	return startEnclave(e.t, e.dir, e.data, e.port, e.env)
}

// ownerTokenIn reads DATA/owner.token.
func ownerTokenIn(t *testing.T, data string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "owner.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// parseDeploy reads the text output of `vouch deploy`.
func parseDeploy(t *testing.T, r result) (id, sum string) {
	t.Helper()
	m1, m2 := idRE.FindStringSubmatch(r.stdout), sumRE.FindStringSubmatch(r.stdout)
	if m1 == nil || m2 == nil {
		t.Fatalf("deploy output has no Function ID ➜ / Function Checksum ➜ lines:\n%s", r)
	}
	return m1[1], m2[1]
}

// leaderOf reads the leader function's output.
func leaderOf(t *testing.T, output []byte) string {
	t.Helper()
	var out struct {
		Cluster string   `json:"cluster"`
		Leader  string   `json:"leader"`
		Members []string `json:"members"`
	}
	if err := json.Unmarshal(output, &out); err != nil {
		t.Fatalf("leader output %q: %v", output, err)
	}
	return out.Leader
}

func writeFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}

// TestE2EQuickStart walks through the README's quick start against a real
// runtime process.
func TestE2EQuickStart(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	data := filepath.Join(t.TempDir(), "data")
	enc := startEnclave(t, work, data, 0, nil)
	// The owner's shell: the runtime's URL and data directory in the
	// environment.
	owner := newCLI(t, work, "VOUCH_ENCLAVE="+enc.url, "VOUCH_DATA="+data)
	// A user's shell elsewhere, with no credential at all.
	user := newCLI(t, t.TempDir(), "VOUCH_ENCLAVE="+enc.url)

	// Deploy, in text and in JSON.
	r := owner.ok("deploy", "--builtin", "leader")
	id, sum := parseDeploy(t, r)
	if !strings.Contains(r.stdout, "Function Name ➜ leader\n") {
		t.Errorf("deploy does not print the manifest's name:\n%s", r)
	}
	if r.stderr != "" {
		t.Errorf("deploy wrote to stderr:\n%s", r)
	}
	r = owner.ok("deploy", "--builtin", "leader", "-o", "json")
	var fields map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &fields); err != nil {
		t.Fatalf("deploy -o json: %v\n%s", err, r)
	}
	if len(fields) != 3 || fields["function_id"] == "" || fields["function_id"] == id ||
		fields["function_checksum"] != sum || fields["function_name"] != "leader" {
		t.Fatalf("deploy -o json = %v; want function_id (new), function_checksum %s, function_name leader", fields, sum)
	}
	id2 := fields["function_id"]

	// The checksum needs no runtime, and is the one deploy printed.
	if got := strings.TrimSpace(user.ok("checksum", "--builtin", "leader").stdout); got != sum {
		t.Fatalf("vouch checksum --builtin leader = %s, deploy printed %s", got, sum)
	}

	// Running needs a function token: the owner credential, even at hand,
	// is never sent in its place.
	owner.fail(1, []string{"no function token", "vouch: hint: ", "vouch token " + id + " --function-checksum " + sum}, "run", id, leaderInput, "--function-checksum", sum, "--allow-simulated")
	tok0 := strings.TrimSpace(owner.ok("token", id, "--function-checksum", sum).stdout)
	owner = owner.with("VOUCH_TOKEN=" + tok0)

	// Run: the output, with the receipt verified on stderr.
	r = user.ok("run", id, leaderInput, "--function-checksum", sum, "--allow-simulated", "--token", tok0)
	if leaderOf(t, []byte(r.stdout)) != "5002" || !strings.HasSuffix(r.stdout, "}\n") {
		t.Fatalf("run output:\n%s", r)
	}
	if !strings.Contains(r.stderr, "receipt verified: seq ") || !strings.Contains(r.stderr, "SIMULATED") {
		t.Errorf("run does not report the verified receipt and SIMULATED on stderr:\n%s", r)
	}
	// Node IDs as numbers, as the original demo sent them; a refused
	// input says what it refused, in its code, though the input is sealed.
	r = user.ok("run", id, `{"node_list":[1,2]}`, "--function-checksum", sum, "--allow-simulated", "--token", tok0)
	if leaderOf(t, []byte(r.stdout)) != "2" || !strings.Contains(r.stdout, `"members":["1","2"]`) {
		t.Fatalf("run with numeric IDs:\n%s", r)
	}
	r = user.fail(1, []string{"function refused its input (invalid_value)", "details withheld", "vouch run --plaintext"},
		"run", id, `{"node_list":[1,2.5]}`, "--function-checksum", sum, "--allow-simulated", "--token", tok0)
	if strings.Contains(r.stderr, "2.5") {
		t.Fatalf("a sealed input's refusal repeats it:\n%s", r)
	}
	user.fail(1, []string{"function refused its input (duplicate_value)", `duplicate member ID "1"`},
		"run", id, `{"node_list":[1,"1"]}`, "--plaintext", "--function-checksum", sum, "--allow-simulated", "--token", tok0)
	// Flags may come first; the input may come from stdin.
	r = owner.runStdin(leaderInput, "run", "--allow-simulated", "--function-checksum", sum, id, "-f", "-")
	if r.code != 0 || leaderOf(t, []byte(r.stdout)) != "5002" {
		t.Fatalf("run -f -:\n%s", r)
	}

	// -o json: output, receipt and attestation; the receipt verifies
	// offline.
	r = owner.ok("run", id, leaderInput, "--function-checksum", sum, "--allow-simulated", "-o", "json")
	var res api.RunRecord
	if err := api.UnmarshalStrict([]byte(r.stdout), &res); err != nil {
		t.Fatalf("run -o json: %v\n%s", err, r)
	}
	if res.Attestation == nil || res.Attestation.Platform != "SIMULATED" || !res.Attestation.Simulated {
		t.Fatalf("run -o json does not say SIMULATED: %+v\n%s", res.Attestation, r)
	}
	if leaderOf(t, res.Output) != "5002" || res.Receipt.FunctionID != id || res.Receipt.FunctionChecksum != sum ||
		res.Receipt.InputSHA256 != receipt.SHA256Hex([]byte(leaderInput)) || res.Receipt.OutputSHA256 != receipt.SHA256Hex(res.Output) {
		t.Fatalf("run -o json: %+v", res)
	}
	resJSON := r.stdout
	resFile := filepath.Join(user.dir, "result.json")
	writeFile(t, resFile, []byte(resJSON), 0o644)
	inFile := filepath.Join(user.dir, "input.json")
	writeFile(t, inFile, []byte(leaderInput), 0o644)

	// The receipt key, from the runtime's attestation.
	r = user.ok("attest", "--allow-simulated")
	if !strings.Contains(r.stdout, "SIMULATED") || !strings.Contains(r.stdout, "attestation verified") {
		t.Fatalf("attest output does not say SIMULATED:\n%s", r)
	}
	r = user.ok("attest", "--allow-simulated", "-o", "json")
	var att struct {
		Platform   string            `json:"platform"`
		Simulated  bool              `json:"simulated"`
		ReceiptKey string            `json:"receipt_key"`
		KeyID      string            `json:"key_id"`
		Digest     string            `json:"digest"`
		PCRs       map[string]string `json:"pcrs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &att); err != nil || !att.Simulated || att.Platform != "SIMULATED" || att.KeyID != res.Receipt.KeyID {
		t.Fatalf("attest -o json: %v %+v\n%s", err, att, r)
	}
	// PCR0 is what `sha256sum vouch` prints.
	bin, err := os.ReadFile(vouchBin(t))
	if err != nil {
		t.Fatal(err)
	}
	if sha := sha256.Sum256(bin); att.PCRs["0"] != hex.EncodeToString(sha[:]) || att.Digest != "SHA256" {
		t.Fatalf("attest -o json: pcr0 %s (digest %s), want the SHA-256 of the vouch binary, %x", att.PCRs["0"], att.Digest, sha)
	}
	pub, _ := hex.DecodeString(att.ReceiptKey)
	user.fail(1, []string{"SIMULATED", "--allow-simulated"}, "attest")

	// verify accepts the receipt with the key (hex or base64) or the
	// runtime, and checks the input when asked.
	for _, args := range [][]string{
		{"verify", resFile, "--key", att.ReceiptKey},
		{"verify", resFile, "--key", base64.StdEncoding.EncodeToString(pub)},
		{"verify", "--enclave", enc.url, "--allow-simulated", resFile},
		{"verify", resFile, "--allow-simulated"}, // the runtime from $VOUCH_ENCLAVE
		{"verify", resFile, "--key", att.ReceiptKey, "--input", inFile},
	} {
		r := user.ok(args...)
		if !strings.Contains(r.stdout, "receipt OK\n") || !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, fmt.Sprintf("seq       %d\n", res.Receipt.Seq)) {
			t.Errorf("%s", r)
		}
		// With the runtime, the attestation it verified says SIMULATED;
		// with a key, the recorded one does.
		if !strings.Contains(r.stdout, "SIMULATED") {
			t.Errorf("verify does not say SIMULATED:\n%s", r)
		}
	}
	// A bare receipt verifies too.
	bare, _ := json.Marshal(res.Receipt)
	bareFile := filepath.Join(user.dir, "receipt.json")
	writeFile(t, bareFile, bare, 0o644)
	user.ok("verify", bareFile, "--key", att.ReceiptKey)

	// ... and rejects tampered ones, with exit 1.
	tamper := func(name string, f func(*api.RunRecord)) string {
		var cp api.RunRecord
		if err := json.Unmarshal([]byte(resJSON), &cp); err != nil {
			t.Fatal(err)
		}
		f(&cp)
		b, _ := json.Marshal(cp)
		p := filepath.Join(user.dir, name)
		writeFile(t, p, b, 0o644)
		return p
	}
	for _, file := range []string{
		tamper("t-output.json", func(c *api.RunRecord) { c.Output = bytes.Replace(c.Output, []byte("5002"), []byte("5001"), 1) }),
		tamper("t-seq.json", func(c *api.RunRecord) { c.Receipt.Seq += 1000 }),
		tamper("t-input.json", func(c *api.RunRecord) { c.Receipt.InputSHA256 = receipt.SHA256Hex([]byte("{}")) }),
		tamper("t-function.json", func(c *api.RunRecord) { c.Receipt.FunctionID = id2 }),
		tamper("t-time.json", func(c *api.RunRecord) { c.Receipt.Time = c.Receipt.Time.Add(time.Second) }),
		tamper("t-sig.json", func(c *api.RunRecord) { c.Receipt.Signature[0] ^= 1 }),
	} {
		user.fail(1, []string{"signature does not verify"}, "verify", file, "--key", att.ReceiptKey)
		user.fail(1, []string{"signature does not verify"}, "verify", file, "--enclave", enc.url, "--allow-simulated")
	}
	// The right receipt for another input.
	writeFile(t, inFile, []byte(`{"node_list":["1"]}`), 0o644)
	user.fail(1, []string{"not for the input in"}, "verify", resFile, "--key", att.ReceiptKey, "--input", inFile)
	// Another runtime's key.
	other := strings.Repeat("ab", 32)
	user.fail(1, []string{"signature does not verify"}, "verify", resFile, "--key", other)

	// A wrong expected checksum: nothing is sent, and the CLI says which
	// checksum is deployed and which was expected.
	wrong := receipt.SHA256Hex([]byte("another function"))
	owner.fail(1, []string{fmt.Sprintf("function checksum mismatch: deployed %s, expected %s", sum, wrong), "vouch: hint: "},
		"run", id, leaderInput, "--function-checksum", wrong, "--allow-simulated")
	// Upper case is the same checksum.
	owner.ok("run", id, leaderInput, "--function-checksum", strings.ToUpper(sum), "--allow-simulated")
	// A SIMULATED runtime is refused unless the user allows it.
	owner.fail(1, []string{"SIMULATED", "vouch: hint: ", "--allow-simulated"}, "run", id, leaderInput, "--function-checksum", sum)
	// No checksum: a hint says where to get one.
	owner.fail(1, []string{"no expected checksum", "vouch: hint: ", "--function-checksum"}, "run", id, leaderInput, "--allow-simulated")

	// A token and a function reference: a user with no owner credential
	// runs the function with the reference alone.
	r = owner.ok("token", id, "--function-checksum", sum, "-o", "json")
	if !strings.Contains(r.stderr, "SIMULATED") {
		t.Errorf("token -o json does not warn that the reference allows SIMULATED:\n%s", r)
	}
	ref, err := api.ParseRef([]byte(r.stdout))
	if err != nil {
		t.Fatalf("token -o json is not a valid reference: %v\n%s", err, r)
	}
	if ref.FunctionID != id || ref.FunctionChecksum != sum || ref.EnclaveURL != enc.url || ref.Trust.Platform != "SIMULATED" || !ref.Trust.AllowSimulated ||
		ref.Trust.RootFingerprint == "" || ref.Trust.KeyID != res.Receipt.KeyID || len(ref.Trust.PCRs["0"]) != 1 {
		t.Fatalf("reference: %+v", ref)
	}
	refFile := filepath.Join(user.dir, "ref.json")
	writeFile(t, refFile, []byte(r.stdout), 0o600)
	nobody := newCLI(t, user.dir) // not even VOUCH_ENCLAVE: the reference has the URL
	r = nobody.ok("run", "--ref", refFile, leaderInput)
	if leaderOf(t, []byte(r.stdout)) != "5002" {
		t.Fatalf("run --ref:\n%s", r)
	}
	nobody.with("VOUCH_REF="+refFile).ok("run", leaderInput)
	nobody.ok("run", id, "--ref", refFile, leaderInput) // the ID may be repeated
	nobody.ok("attest", "--ref", refFile)               // the reference's trust allows SIMULATED
	// The reference pins the checksum: a different one on the command line
	// overrides it and is refused.
	nobody.fail(1, []string{"function checksum mismatch"}, "run", "--ref", refFile, "--function-checksum", wrong, leaderInput)
	// Plain token text output.
	r = owner.ok("token", id, "--function-checksum", sum, "--expiry", "1h")
	tok := strings.TrimSpace(r.stdout)
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("token output is not a token:\n%s", r)
	}
	nobody.ok("run", id, leaderInput, "--function-checksum", sum, "--allow-simulated", "--enclave", enc.url, "--token", tok)
	// A token is minted only for the checksum deployed.
	owner.fail(1, nil, "token", id, "--function-checksum", wrong)
	owner.fail(1, []string{"no expected checksum", "vouch: hint: "}, "token", id)

	// Revoke the reference's token: runs with it are refused (403).
	r = owner.ok("token", "revoke", "--ref", refFile)
	if strings.TrimSpace(r.stdout) != "Token revoked" {
		t.Errorf("token revoke:\n%s", r)
	}
	nobody.fail(1, []string{"revoked"}, "run", "--ref", refFile, leaderInput)
	c, err := client.New(enc.url, client.Options{Trust: ref.Trust})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Run(context.Background(), client.FunctionRef{ID: id, Checksum: sum, Token: ref.FunctionToken}, []byte(leaderInput))
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || !strings.Contains(ae.Message, "revoked") {
		t.Fatalf("run with a revoked token: %v; want a 403 that says revoked", err)
	}
	// The other token still works.
	nobody.ok("run", id, leaderInput, "--function-checksum", sum, "--allow-simulated", "--enclave", enc.url, "--token", tok)
	// Revoking by token text works too.
	owner.ok("token", "revoke", tok)
	nobody.fail(1, []string{"revoked"}, "run", id, leaderInput, "--function-checksum", sum, "--allow-simulated", "--enclave", enc.url, "--token", tok)

	// list and delete.
	r = owner.ok("list")
	if !strings.HasPrefix(r.stdout, "ID ") || !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, id2) || !strings.Contains(r.stdout, sum) {
		t.Fatalf("list:\n%s", r)
	}
	r = owner.ok("delete", id2)
	if strings.TrimSpace(r.stdout) != "Deleted "+id2 {
		t.Errorf("delete:\n%s", r)
	}
	r = owner.ok("list", "-o", "json")
	var fns []api.Function
	if err := json.Unmarshal([]byte(r.stdout), &fns); err != nil || len(fns) != 1 || fns[0].FunctionID != id || fns[0].FunctionName != "leader" || fns[0].FunctionChecksum != sum {
		t.Fatalf("list -o json after delete: %v %+v\n%s", err, fns, r)
	}
	owner.fail(1, []string{"vouch: error: "}, "delete", id2)
	owner.fail(1, []string{"vouch: error: "}, "run", id2, leaderInput, "--function-checksum", sum, "--allow-simulated")
	// Owner commands need the owner credential.
	user.fail(1, []string{"no owner credential found", "vouch: hint: "}, "list")
	user.fail(1, []string{"no owner credential found", "vouch: hint: "}, "deploy", "--builtin", "leader")
	user.fail(1, []string{"no owner credential found"}, "delete", id)
	user.fail(1, []string{"no owner credential found"}, "token", id, "--function-checksum", sum)

	// The runtime logs go to stderr; its stdout stays empty. Its start-up
	// log says SIMULATED.
	if out := enc.stdout(); out != "" {
		t.Errorf("vouch enclave wrote to stdout: %q", out)
	}
	if s := enc.stderr(); !strings.Contains(s, "attestation=SIMULATED") || !strings.Contains(s, "attestation is SIMULATED") {
		t.Errorf("the runtime's start-up log does not say SIMULATED:\n%s", s)
	}
}

// leaderChecksum is what `vouch checksum --builtin leader` must print.
func leaderChecksum(t testing.TB) string {
	t.Helper()
	b, err := functions.Builtin("leader")
	if err != nil {
		t.Fatal(err)
	}
	return b.Checksum()
}
