package join

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/enclave/internal/servicekeys"
)

func TestJoin(t *testing.T) {
	s := newService(t)
	j := joiner(newSim(t, s.dir, pcr0), "r2")
	keys, err := j.Join(context.Background(), s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(keys.Marshal(), s.keys.Marshal()) {
		t.Fatal("the joiner's keys differ from the member's")
	}
	got := s.admissions()
	if len(got) != 1 || got[0] != (Admission{ReplicaID: "r2", RaftAddr: j.RaftAddr, APIURL: j.APIURL}) {
		t.Fatalf("admissions = %+v", got)
	}
	if n := s.member.outstanding(); n != 0 {
		t.Fatalf("%d challenges outstanding after the join, want 0", n)
	}
}

// joinRefused joins s with j and returns the member's error answer.
func joinRefused(t *testing.T, s *service, j *Joiner) *api.Error {
	t.Helper()
	keys, err := j.Join(context.Background(), s.srv.URL)
	if err == nil {
		t.Fatalf("joined, got %v", keys)
	}
	var ae *api.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not the member's answer", err)
	}
	if len(s.admissions()) != 0 {
		t.Fatal("a refused joiner was admitted")
	}
	return ae
}

func TestJoinRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		att  func(s *service) attest.Attester
		want string
	}{
		{"another simulated root", func(*service) attest.Attester { return newSim(t, t.TempDir(), pcr0) }, "the policy pins"},
		{"another PCR0", func(s *service) attest.Attester { return newSim(t, s.dir, otherPCR0) }, "measurements"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newService(t)
			ae := joinRefused(t, s, joiner(tc.att(s), "r2"))
			if ae.Status != http.StatusForbidden || ae.Code != api.CodeForbidden || !strings.Contains(ae.Message, tc.want) || ae.Hint == "" {
				t.Fatalf("answer %d %s %q (hint %q), want 403 forbidden naming %q", ae.Status, ae.Code, ae.Message, ae.Hint, tc.want)
			}
			t.Logf("%s (%s)", ae.Message, ae.Hint)
		})
	}
}

func TestAdmitRefuses(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	same := newSim(t, s.dir, pcr0)
	check := func(name string, doc []byte, want ...error) {
		t.Helper()
		resp, a, err := s.member.Admit(ctx, &Request{Attestation: doc})
		if err == nil {
			t.Fatalf("%s: admitted %+v (%v)", name, a, resp)
		}
		for _, w := range append(want, ErrRefused) {
			if !errors.Is(err, w) {
				t.Fatalf("%s: error %v does not wrap %v", name, err, w)
			}
		}
		t.Logf("%s: %v", name, err)
	}
	challenge := func() []byte {
		n, err := s.member.Challenge()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	check("another root", joinDoc(t, newSim(t, t.TempDir(), pcr0), challenge(), testAdmission), attest.ErrUntrustedRoot)
	check("another PCR0", joinDoc(t, newSim(t, s.dir, otherPCR0), challenge(), testAdmission), attest.ErrPCR)
	check("unknown nonce", joinDoc(t, same, digest("not a challenge"), testAdmission), ErrChallenge)
	check("no nonce", joinDoc(t, same, nil, testAdmission), ErrChallenge)
	check("a real Nitro document", nitroDoc(t), attest.ErrUntrustedRoot)
	check("empty", nil, ErrMalformed)
	check("garbage", []byte("{not a document"), attest.ErrMalformed)

	// Replay: the same document twice.
	doc := joinDoc(t, same, challenge(), testAdmission)
	if _, a, err := s.member.Admit(ctx, &Request{Attestation: doc}); err != nil || *a != testAdmission {
		t.Fatalf("first use: %+v, %v", a, err)
	}
	check("replayed document", doc, ErrChallenge)

	// Bad user_data or key, each on a fresh challenge.
	for name, ad := range map[string]Admission{
		"bad replica ID": {ReplicaID: "R2!", RaftAddr: "h:1", APIURL: "http://h"},
		"no raft port":   {ReplicaID: "r2", RaftAddr: "h", APIURL: "http://h"},
		"ftp API URL":    {ReplicaID: "r2", RaftAddr: "h:1", APIURL: "ftp://h"},
	} {
		check(name, joinDoc(t, same, challenge(), ad), ErrMalformed)
	}
	noKey, err := same.Attest(ctx, attest.Request{Nonce: challenge(), UserData: userData(testAdmission)})
	if err != nil {
		t.Fatal(err)
	}
	check("no public key", noKey, ErrMalformed)
	// A refusal after the nonce check still used up the challenge.
	check("no public key again", noKey, ErrChallenge)
}

func TestAdmitExpiredChallenge(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	dir := t.TempDir()
	att := newSim(t, dir, pcr0)
	keys, _ := servicekeys.Generate()
	m := NewMember(Policy{Attester: att, Now: clock}, keys, identity(att, keys, "r1"))
	n, err := m.Challenge()
	if err != nil {
		t.Fatal(err)
	}
	doc := joinDoc(t, att, n, testAdmission)
	mu.Lock()
	now = now.Add(ChallengeTTL)
	mu.Unlock()
	if _, _, err := m.Admit(context.Background(), &Request{Attestation: doc}); !errors.Is(err, ErrChallenge) {
		t.Fatalf("expired challenge: %v", err)
	}
}

func TestChallengeBound(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	m := NewMember(Policy{Now: clock}, nil, nil)
	seen := map[string]bool{}
	for range MaxChallenges {
		n, err := m.Challenge()
		if err != nil {
			t.Fatal(err)
		}
		if len(n) != NonceSize || seen[string(n)] {
			t.Fatalf("bad or repeated nonce %x", n)
		}
		seen[string(n)] = true
	}
	if _, err := m.Challenge(); !errors.Is(err, ErrBusy) {
		t.Fatalf("challenge %d: %v, want ErrBusy", MaxChallenges+1, err)
	}
	mu.Lock()
	now = now.Add(ChallengeTTL)
	mu.Unlock()
	if _, err := m.Challenge(); err != nil {
		t.Fatalf("after the challenges expired: %v", err)
	}
	if n := m.outstanding(); n != 1 {
		t.Fatalf("%d outstanding, want 1", n)
	}
}

// TestAdmitOnce sends one document many times at once: exactly one wins.
func TestAdmitOnce(t *testing.T) {
	s := newService(t)
	n, _ := s.member.Challenge()
	doc := joinDoc(t, newSim(t, s.dir, pcr0), n, testAdmission)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 8 {
		wg.Go(func() {
			_, _, err := s.member.Admit(context.Background(), &Request{Attestation: doc})
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, ErrChallenge) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d admissions of one document, want 1", ok)
	}
}

func TestAllowPCRs(t *testing.T) {
	dir := t.TempDir()
	att := newSim(t, dir, pcr0)
	keys, _ := servicekeys.Generate()
	m := NewMember(Policy{Attester: att, AllowPCRs: []map[int][]byte{{}, {0: otherPCR0}}}, keys, identity(att, keys, "r1"))
	n, _ := m.Challenge()
	if _, _, err := m.Admit(context.Background(), &Request{Attestation: joinDoc(t, newSim(t, dir, otherPCR0), n, testAdmission)}); err != nil {
		t.Fatalf("allowlisted PCR0 refused: %v", err)
	}
	n, _ = m.Challenge()
	if _, _, err := m.Admit(context.Background(), &Request{Attestation: joinDoc(t, newSim(t, dir, digest("third")), n, testAdmission)}); !errors.Is(err, attest.ErrPCR) {
		t.Fatalf("PCR0 off the list: %v", err)
	}
}

// TestNitroMember: a member on Nitro refuses SIMULATED documents, and a real
// Nitro document whose nonce it never issued.
func TestNitroMember(t *testing.T) {
	keys, _ := servicekeys.Generate()
	m := NewMember(Policy{Attester: replayAttester{nitroDoc(t)}, Now: func() time.Time { return nitroTime }}, keys, nil)
	n, err := m.Challenge()
	if err != nil {
		t.Fatal(err)
	}
	sim := newSim(t, t.TempDir(), pcr0)
	_, _, err = m.Admit(context.Background(), &Request{Attestation: joinDoc(t, sim, n, testAdmission)})
	if !errors.Is(err, ErrRefused) || !errors.Is(err, attest.ErrSimulated) || !strings.Contains(err.Error(), "SIMULATED but this service runs on aws-nitro") {
		t.Fatalf("simulated document to a Nitro member: %v", err)
	}
	if ae := admitError(err); ae.Status != http.StatusForbidden || !strings.Contains(ae.Hint, "real enclaves") {
		t.Fatalf("answer %+v", ae)
	}
	if _, _, err := m.Admit(context.Background(), &Request{Attestation: nitroDoc(t)}); !errors.Is(err, ErrChallenge) {
		t.Fatalf("recorded Nitro document: %v", err)
	}
	// The member's reference is PCR0, 1 and 2 of its own document.
	ref, err := m.reference(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := attest.Verify(nitroDoc(t), attest.Policy{Now: func() time.Time { return nitroTime }})
	if err != nil {
		t.Fatal(err)
	}
	if ref.platform != attest.PlatformNitro || len(ref.pcrs) != 3 || !m.measurementsAllowed(ref, c) {
		t.Fatalf("reference %+v does not match its own document", ref)
	}
	other := *c
	other.PCRs = map[int][]byte{0: c.PCRs[0], 1: c.PCRs[1], 2: make([]byte, attest.NitroPCRLen)}
	if m.measurementsAllowed(ref, &other) {
		t.Fatal("another PCR2 matched")
	}
}

// TestMemberOwnPlatform: a member whose attester's documents are of
// another platform than it claims cannot admit anyone.
func TestMemberOwnPlatform(t *testing.T) {
	keys, _ := servicekeys.Generate()
	sim := newSim(t, t.TempDir(), pcr0)
	m := NewMember(Policy{Attester: liar{sim}}, keys, nil)
	n, _ := m.Challenge()
	if _, _, err := m.Admit(context.Background(), &Request{Attestation: joinDoc(t, sim, n, testAdmission)}); err == nil || errors.Is(err, ErrRefused) {
		t.Fatalf("got %v, want the member's own failure", err)
	}
}

type liar struct{ attest.Attester }

func (liar) Platform() string { return attest.PlatformNitro }

func TestFollowerRedirect(t *testing.T) {
	leader := newService(t)
	follower := newService(t) // another service: if it admitted, the keys would differ
	follower.leader = func() (bool, string) { return false, leader.srv.URL }
	keys, err := joiner(newSim(t, leader.dir, pcr0), "r3").Join(context.Background(), follower.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(keys.Marshal(), leader.keys.Marshal()) || len(leader.admissions()) != 1 {
		t.Fatal("not joined through the leader")
	}
	if follower.member.outstanding() != 0 || len(follower.admissions()) != 0 {
		t.Fatal("the follower handed out a challenge or admitted")
	}

	// A loop of redirects ends.
	follower.leader = func() (bool, string) { return false, follower.srv.URL }
	if _, err := joiner(newSim(t, follower.dir, pcr0), "r3").Join(context.Background(), follower.srv.URL); err == nil || !strings.Contains(err.Error(), "redirects") {
		t.Fatalf("redirect loop: %v", err)
	}
	// No leader known.
	follower.leader = func() (bool, string) { return false, "" }
	_, err = joiner(newSim(t, follower.dir, pcr0), "r3").Join(context.Background(), follower.srv.URL)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeNoLeader || ae.Status != http.StatusServiceUnavailable {
		t.Fatalf("no leader: %v", err)
	}
}

func TestFollowerAnswers(t *testing.T) {
	s := newService(t)
	s.leader = func() (bool, string) { return false, "http://127.0.0.1:30009" }
	for _, path := range []string{ChallengePath, JoinPath} {
		code, er, h := post(t, s.srv.URL+path, "{not json")
		if code != http.StatusMisdirectedRequest || er.Code != api.CodeNotLeader || er.LeaderURL != "http://127.0.0.1:30009" {
			t.Fatalf("%s: %d %+v", path, code, er)
		}
		_ = h
	}
	s.leader = func() (bool, string) { return false, "" }
	code, er, h := post(t, s.srv.URL+ChallengePath, "")
	if code != http.StatusServiceUnavailable || er.Code != api.CodeNoLeader || h.Get("Retry-After") == "" {
		t.Fatalf("no leader: %d %+v", code, er)
	}
}

// post sends body and decodes an error answer.
func post(t *testing.T, url, body string) (int, *api.Error, http.Header) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var er api.ErrorResponse
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(data, &er); err != nil || er.Error == nil || er.Error.Message == "" {
			t.Fatalf("HTTP %d with body %q", resp.StatusCode, data)
		}
	}
	return resp.StatusCode, er.Error, resp.Header
}

func TestMalformedRequests(t *testing.T) {
	s := newService(t)
	for name, tc := range map[string]struct {
		path, body string
		status     int
		code       string
	}{
		"join: empty":          {JoinPath, "", 400, api.CodeBadRequest},
		"join: not JSON":       {JoinPath, "{", 400, api.CodeBadRequest},
		"join: unknown field":  {JoinPath, `{"attestation":"AAAA","replica_id":"r2"}`, 400, api.CodeBadRequest},
		"join: trailing data":  {JoinPath, `{"attestation":"AAAA"} {}`, 400, api.CodeBadRequest},
		"join: not base64":     {JoinPath, `{"attestation":"%%%"}`, 400, api.CodeBadRequest},
		"join: no attestation": {JoinPath, `{}`, 400, api.CodeBadRequest},
		"join: null":           {JoinPath, `null`, 400, api.CodeBadRequest},
		"join: too large":      {JoinPath, `{"attestation":"` + strings.Repeat("A", MaxRequestSize) + `"}`, 413, api.CodeTooLarge},
		"join: not a document": {JoinPath, `{"attestation":"AAAA"}`, 403, api.CodeForbidden},
		"challenge: junk":      {ChallengePath, `[1]`, 400, api.CodeBadRequest},
		"challenge: field":     {ChallengePath, `{"x":1}`, 400, api.CodeBadRequest},
		"challenge: too large": {ChallengePath, strings.Repeat(" ", 2000), 413, api.CodeTooLarge},
		"no such endpoint":     {"/v1/replicas/other", `{}`, 404, api.CodeNoRoute},
	} {
		code, er, _ := post(t, s.srv.URL+tc.path, tc.body)
		if code != tc.status || er.Code != tc.code {
			t.Errorf("%s: %d %+v, want %d %s", name, code, er, tc.status, tc.code)
		}
	}
	for _, body := range []string{"", "{}", " {} \n"} {
		resp, err := http.Post(s.srv.URL+ChallengePath, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var ch Challenge
		err = json.NewDecoder(resp.Body).Decode(&ch)
		resp.Body.Close()
		if resp.StatusCode != 200 || err != nil || len(ch.Nonce) != NonceSize {
			t.Fatalf("challenge with body %q: %d %v", body, resp.StatusCode, err)
		}
	}
	resp, err := http.Get(s.srv.URL + JoinPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	if len(s.admissions()) != 0 {
		t.Fatal("admitted")
	}
}

// TestAdmitCallbackFails: when the server cannot add the replica, the
// joiner gets the server's error and no keys.
func TestAdmitCallbackFails(t *testing.T) {
	dir := t.TempDir()
	att := newSim(t, dir, pcr0)
	keys, _ := servicekeys.Generate()
	m := NewMember(Policy{Attester: att}, keys, identity(att, keys, "r1"))
	srv := httptest.NewServer(m.Handler(func(_ context.Context, a *Admission) error {
		return &api.Error{Status: http.StatusConflict, Code: "replica_exists", Message: "replica " + a.ReplicaID + " is already a member at another address"}
	}, func() (bool, string) { return true, "" }))
	defer srv.Close()
	_, err := joiner(newSim(t, dir, pcr0), "r1").Join(context.Background(), srv.URL)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || !strings.Contains(ae.Message, "already a member") {
		t.Fatalf("got %v", err)
	}
}

// TestJoinerRefusesMember: a member whose identity binds other keys than
// those it sealed, or is of another root, is refused.
func TestJoinerRefusesMember(t *testing.T) {
	for name, mk := range map[string]func(s *service) func(context.Context, []byte) ([]byte, error){
		"other receipt key": func(s *service) func(context.Context, []byte) ([]byte, error) {
			other, _ := servicekeys.Generate()
			return identity(s.att, other, "r1")
		},
		"other HPKE key": func(s *service) func(context.Context, []byte) ([]byte, error) {
			other, _ := servicekeys.Generate()
			k := *s.keys
			k.HPKE = other.HPKE
			return identity(s.att, &k, "r1")
		},
		"single runtime identity": func(s *service) func(context.Context, []byte) ([]byte, error) {
			rk := []byte(s.keys.Receipt.Public().(ed25519.PublicKey))
			return func(ctx context.Context, n []byte) ([]byte, error) {
				return s.att.Attest(ctx, attest.Request{Nonce: n, PublicKey: rk, UserData: api.IdentityUserData(rk, s.keys.HPKE.PublicKey())})
			}
		},
		"other root": func(s *service) func(context.Context, []byte) ([]byte, error) {
			return identity(newSim(t, t.TempDir(), pcr0), s.keys, "r1")
		},
		"stale nonce": func(s *service) func(context.Context, []byte) ([]byte, error) {
			id := identity(s.att, s.keys, "r1")
			return func(ctx context.Context, _ []byte) ([]byte, error) { return id(ctx, digest("old")) }
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := newService(t)
			s.member.selfIdentity = mk(s)
			_, err := joiner(newSim(t, s.dir, pcr0), "r2").Join(context.Background(), s.srv.URL)
			if !errors.Is(err, ErrMember) {
				t.Fatalf("got %v, want ErrMember", err)
			}
			t.Log(err)
		})
	}
}

func TestOpenKeys(t *testing.T) {
	keys, _ := servicekeys.Generate()
	priv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	nonce := digest("n")
	sealed, err := sealKeys(priv.PublicKey().Bytes(), "r2", nonce, keys)
	if err != nil {
		t.Fatal(err)
	}
	got, err := openKeys(priv, "r2", nonce, sealed)
	if err != nil || !bytes.Equal(got.Marshal(), keys.Marshal()) {
		t.Fatalf("round trip: %v", err)
	}
	other, _ := ecdh.X25519().GenerateKey(rand.Reader)
	for name, try := range map[string]func() error{
		"other replica ID": func() error { _, err := openKeys(priv, "r3", nonce, sealed); return err },
		"other nonce":      func() error { _, err := openKeys(priv, "r2", digest("m"), sealed); return err },
		"other key":        func() error { _, err := openKeys(other, "r2", nonce, sealed); return err },
		"flipped byte": func() error {
			b := bytes.Clone(sealed)
			b[len(b)-1] ^= 1
			_, err := openKeys(priv, "r2", nonce, b)
			return err
		},
		"short": func() error { _, err := openKeys(priv, "r2", nonce, sealed[:40]); return err },
	} {
		if err := try(); !errors.Is(err, ErrMember) && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestUserDataRoundTrip(t *testing.T) {
	for _, a := range []Admission{
		testAdmission,
		{ReplicaID: "a.b_c-0", RaftAddr: "[::1]:65535", APIURL: "https://replica-1.example:8443/base"},
	} {
		got, err := parseUserData(userData(a))
		if err != nil || got != a {
			t.Fatalf("%+v: got %+v, %v", a, got, err)
		}
	}
	for name, a := range map[string]Admission{
		"empty ID":       {RaftAddr: "h:1", APIURL: "http://h"},
		"port 0":         {ReplicaID: "r", RaftAddr: "h:0", APIURL: "http://h"},
		"no host":        {ReplicaID: "r", RaftAddr: ":1", APIURL: "http://h"},
		"URL with query": {ReplicaID: "r", RaftAddr: "h:1", APIURL: "http://h/?x=1"},
		"URL with user":  {ReplicaID: "r", RaftAddr: "h:1", APIURL: "http://u@h"},
		"no URL host":    {ReplicaID: "r", RaftAddr: "h:1", APIURL: "http:///x"},
	} {
		if _, err := parseUserData(userData(a)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestJoinerSettings(t *testing.T) {
	s := newService(t)
	j := joiner(newSim(t, s.dir, pcr0), "R2")
	if _, err := j.Join(context.Background(), s.srv.URL); err == nil || !strings.Contains(err.Error(), "own settings") {
		t.Fatalf("bad replica ID: %v", err)
	}
	j = joiner(newSim(t, s.dir, pcr0), "r2")
	if _, err := j.Join(context.Background(), "ftp://x"); err == nil {
		t.Fatal("ftp member URL accepted")
	}
}

// TestLeaderChangesMidJoin: the member leads when it hands out the
// challenge, not any more when the join arrives; the joiner starts over at
// the new leader.
func TestLeaderChangesMidJoin(t *testing.T) {
	newLeader := newService(t)
	old := newService(t)
	var mu sync.Mutex
	calls := 0
	old.leader = func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return calls == 1, newLeader.srv.URL
	}
	keys, err := joiner(newSim(t, newLeader.dir, pcr0), "r4").Join(context.Background(), old.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(keys.Marshal(), newLeader.keys.Marshal()) || len(old.admissions()) != 0 {
		t.Fatal("not joined through the new leader")
	}
}
