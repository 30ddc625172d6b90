package enclave_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/election/outcome"
	"github.com/vouch-dev/vouch/functions"
	"github.com/vouch-dev/vouch/internal/harness/datadir"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
	"github.com/vouch-dev/vouch/receipt"
)

// rollbackEnv is a runtime whose data directory a test copies and
// restores, as a hostile host does.
type rollbackEnv struct {
	t   *testing.T
	env *enclavetest.Env
}

// save stops the runtime, copies its data directory and starts it again.
func (r *rollbackEnv) save() string {
	r.t.Helper()
	r.env.Stop()
	dst := r.t.TempDir()
	if err := datadir.Copy(dst, r.env.Dir); err != nil {
		r.t.Fatal(err)
	}
	r.env = r.env.Restart()
	return dst
}

// restore stops the runtime, puts the copy back and starts it again.
func (r *rollbackEnv) restore(saved string) {
	r.t.Helper()
	r.env.Stop()
	if err := os.RemoveAll(r.env.Dir); err != nil {
		r.t.Fatal(err)
	}
	if err := datadir.Copy(r.env.Dir, saved); err != nil {
		r.t.Fatal(err)
	}
	r.env = r.env.Restart()
}

func postFloor(t *testing.T, env *enclavetest.Env, fid string, body []byte) *http.Response {
	t.Helper()
	return post(t, env.URL+"/v1/functions/"+fid+"/floor", "", map[string]string{"Content-Type": "application/json"}, body)
}

func floorBody(rc receipt.Receipt, output []byte) []byte {
	b, _ := json.Marshal(api.FloorRequest{Receipt: rc, Output: output})
	return b
}

func wantFloor(t *testing.T, resp *http.Response) api.FloorResult {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	var res api.FloorResult
	if resp.StatusCode != http.StatusOK || api.UnmarshalStrict(body, &res) != nil {
		t.Fatalf("floor: %d %s", resp.StatusCode, body)
	}
	return res
}

// A receipt this runtime signed above its next seq (its data directory was
// restored from a copy) moves the sequence past it; bad proofs change
// nothing.
func TestFloorSeq(t *testing.T) {
	r := &rollbackEnv{t: t, env: enclavetest.Start(t)}
	ref := r.env.DeployLeader()
	ref2 := r.env.DeployLeader()
	other, err := r.env.Client(client.Options{}).Run(ctx, ref2, []byte(leaderInput))
	if err != nil {
		t.Fatal(err)
	}
	saved := r.save()
	res, err := r.env.Client(client.Options{}).Run(ctx, ref, []byte(leaderInput))
	if err != nil {
		t.Fatal(err)
	}
	proof := floorBody(res.Receipt, res.Output)
	r.restore(saved)

	// Bad proofs: 400, nothing changes.
	badSig := res.Receipt
	badSig.Signature = append([]byte(nil), badSig.Signature...)
	badSig.Signature[0] ^= 1
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	forged := res.Receipt
	if err := forged.Sign(otherKey); err != nil {
		t.Fatal(err)
	}
	wrongOut := append([]byte(nil), res.Output...)
	wrongOut[0] ^= 1
	for name, body := range map[string][]byte{
		"bad signature":   floorBody(badSig, res.Output),
		"another key":     floorBody(forged, res.Output),
		"another fn":      floorBody(other.Receipt, other.Output),
		"wrong output":    floorBody(res.Receipt, wrongOut),
		"unknown field":   []byte(strings.Replace(string(proof), `{"receipt"`, `{"x":1,"receipt"`, 1)),
		"no output":       []byte(`{"receipt":` + string(mustJSON(res.Receipt)) + `}`),
		"trailing data":   append(append([]byte(nil), proof...), '{'),
		"not json at all": []byte("\x00\x01"),
	} {
		e := wantError(t, postFloor(t, r.env, ref.ID, body), http.StatusBadRequest, api.CodeBadRequest)
		t.Logf("%s: %s", name, e.Message)
	}
	wantError(t, postFloor(t, r.env, "nosuch", proof), http.StatusNotFound, api.CodeNotFound)

	got := wantFloor(t, postFloor(t, r.env, ref.ID, proof))
	if !got.RolledBack || got.NextSeq != res.Receipt.Seq+1 {
		t.Fatalf("proof above: %+v (proven seq %d)", got, res.Receipt.Seq)
	}
	again := wantFloor(t, postFloor(t, r.env, ref.ID, proof))
	if again.RolledBack {
		t.Fatalf("the same proof again: %+v", again)
	}
	after, err := r.env.Client(client.Options{}).Run(ctx, ref, []byte(leaderInput))
	if err != nil {
		t.Fatal(err)
	}
	if after.Receipt.Seq <= res.Receipt.Seq {
		t.Fatalf("seq %d after a proof of %d", after.Receipt.Seq, res.Receipt.Seq)
	}
	// The raised floor is durable.
	r.env = r.env.Restart()
	later, err := r.env.Client(client.Options{}).Run(ctx, ref, []byte(leaderInput))
	if err != nil {
		t.Fatal(err)
	}
	if later.Receipt.Seq <= res.Receipt.Seq {
		t.Fatalf("seq %d after a restart, proof was %d", later.Receipt.Seq, res.Receipt.Seq)
	}
	metrics := get(t, r.env.URL+"/metrics")
	if !strings.Contains(metrics, `vouch_rollback_detected_total{kind="seq"} 0`) {
		t.Fatalf("metric after a restart: %s", grepLines(metrics, "vouch_rollback"))
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// viewsSubmitter submits signed views of a one-member cluster to the
// built-in election function.
type viewsSubmitter struct {
	t   *testing.T
	ref client.FunctionRef
	cfg *cluster.Signed
	key ed25519.PrivateKey
	seq uint64
}

func (v *viewsSubmitter) submit(env *enclavetest.Env) (*client.Result, outcome.Term) {
	v.t.Helper()
	v.seq++
	sv, err := cluster.SignView(cluster.View{Cluster: "demo", Node: "a", Seq: v.seq, TimeMillis: time.Now().UnixMilli(), Alive: []string{"a"}}, v.key)
	if err != nil {
		v.t.Fatal(err)
	}
	in, _ := json.Marshal(map[string]any{"config": v.cfg, "view": sv})
	res, err := env.Client(client.Options{}).Run(ctx, v.ref, in)
	if err != nil {
		v.t.Fatal(err)
	}
	var o outcome.Term
	if err := json.Unmarshal(res.Output, &o); err != nil {
		v.t.Fatal(err)
	}
	return res, o
}

// A term certificate above the stored term (the runtime lost it to a
// restored copy) is handed to the real election function, which adopts it
// fenced and moves to the next term: it never certifies that term again.
func TestFloorTermAdoptedByElection(t *testing.T) {
	r := &rollbackEnv{t: t, env: enclavetest.Start(t)}
	b, err := functions.Builtin("election")
	if err != nil {
		t.Fatal(err)
	}
	c := r.env.Client(client.Options{})
	d, err := c.Deploy(ctx, b, "")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.MintToken(ctx, d.FunctionID, d.FunctionChecksum, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, owner, _ := ed25519.GenerateKey(rand.Reader)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	cfg, err := cluster.Sign(cluster.Config{Cluster: "demo", Version: 1, Owner: owner.Public().(ed25519.PublicKey), Policy: cluster.PolicyHighest,
		LeaseMillis: 300, ViewTTLMillis: 1000, Members: []cluster.Member{{ID: "a", Key: key.Public().(ed25519.PublicKey)}}}, owner)
	if err != nil {
		t.Fatal(err)
	}
	v := &viewsSubmitter{t: t, ref: client.FunctionRef{ID: d.FunctionID, Checksum: d.FunctionChecksum, Token: tok.FunctionToken}, cfg: cfg, key: key}
	saved := r.save()
	res1, t1 := v.submit(r.env)
	if t1.Term != 1 || t1.Leader != "a" {
		t.Fatalf("first term: %+v", t1)
	}
	r.restore(saved)
	// The restored runtime lost term 1, and would certify it again with
	// other bytes.
	proof := floorBody(res1.Receipt, res1.Output)
	got := wantFloor(t, postFloor(t, r.env, v.ref.ID, proof))
	if !got.RolledBack || got.Term != 1 || got.StoredTerm != 0 {
		t.Fatalf("proof of term 1: %+v", got)
	}
	metrics := get(t, r.env.URL+"/metrics")
	if !strings.Contains(metrics, `vouch_rollback_detected_total{kind="term"} 1`) {
		t.Fatalf("metric: %s", grepLines(metrics, "vouch_rollback"))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, o := v.submit(r.env)
		if res.Receipt.Seq <= res1.Receipt.Seq {
			t.Fatalf("seq %d after a proof of %d", res.Receipt.Seq, res1.Receipt.Seq)
		}
		if o.Term == 1 {
			t.Fatalf("term 1 certified again after the proof: %s", res.Output)
		}
		if o.Term == 2 && o.Leader == "a" {
			break
		}
		if o.Term != 0 {
			t.Fatalf("unexpected answer: %+v", o)
		}
		if time.Now().After(deadline) {
			t.Fatal("no term 2 within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The old proof is a no-op now.
	if got := wantFloor(t, postFloor(t, r.env, v.ref.ID, proof)); got.RolledBack || got.StoredTerm != 2 {
		t.Fatalf("old proof: %+v", got)
	}
}
