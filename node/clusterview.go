package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/receipt"
)

// ClusterView is GET /cluster's body: the cluster as one node sees it,
// with everything needed to re-verify its certificate elsewhere (the
// certificate's output and receipt, and the attested receipt key the node
// checks certificates against). `vouch status` and the dashboard read it;
// docs/API.md documents every field.
type ClusterView struct {
	// Node is the answering node's name.
	Node    string `json:"node"`
	Cluster string `json:"cluster"`
	// Scheme is "seq" (member-list certificates) or "term" (signed views).
	Scheme string `json:"scheme"`
	State  string `json:"state"`
	Leader string `json:"leader"`
	// Seq is the certificate's receipt seq, or its term with signed views.
	Seq      uint64 `json:"seq"`
	IsLeader bool   `json:"is_leader"`
	// LeaseMillis is the term's lease (signed views only); LeaseUntil the
	// latest the leader's lease can run: the receipt's time plus
	// LeaseMillis (the leader counts from when it asked, a little earlier).
	LeaseMillis int64          `json:"lease_ms,omitempty"`
	LeaseUntil  *time.Time     `json:"lease_until,omitempty"`
	Members     []MemberStatus `json:"members"`
	// Certificate is the held certificate; nil when none is held.
	Certificate *ClusterCertificate `json:"certificate,omitempty"`
	Runtime     ClusterRuntime      `json:"runtime"`
	// Rejections counts refused certificates by reason.
	Rejections map[election.Reason]uint64 `json:"rejections"`
	Accepted   uint64                     `json:"certificates_accepted"`
	// Time is the node's clock when it answered.
	Time time.Time `json:"time"`
	// Observer reports that the answering node is an observer (`vouch
	// status --ref --seed` runs one): it verified the certificate itself,
	// against the runtime it attested, and is in no election view.
	// Observers lists the other observers it gossips with.
	Observer  bool     `json:"observer,omitempty"`
	Observers []string `json:"observers,omitempty"`
}

// ClusterCertificate is the held certificate in its receipt's JSON form.
type ClusterCertificate struct {
	// From is where the node got it ("runtime", "peer gossip", ...);
	// AcceptedAt when it accepted it.
	From       string    `json:"from"`
	AcceptedAt time.Time `json:"accepted_at"`
	// IssuedAt is the receipt's time: when the runtime signed it.
	IssuedAt time.Time `json:"issued_at"`
	// Output is the election function's output, the bytes the receipt's
	// output_sha256 covers (base64 in JSON).
	Output  []byte          `json:"output"`
	Receipt receipt.Receipt `json:"receipt"`
}

// ClusterRuntime is the runtime as the node attested it.
type ClusterRuntime struct {
	URL       string `json:"url"`
	Platform  string `json:"platform"`
	Simulated bool   `json:"simulated"`
	// ReceiptKey is the attested Ed25519 receipt key the node verifies
	// certificates with (32 bytes, base64); KeyID its fingerprint. Empty
	// until the node has attested the runtime.
	ReceiptKey []byte `json:"receipt_key,omitempty"`
	KeyID      string `json:"key_id,omitempty"`
	FunctionID string `json:"function_id"`
	Checksum   string `json:"function_checksum"`
	State      string `json:"state"`
}

// ClusterView returns the cluster as this node sees it now.
func (n *Node) ClusterView(ctx context.Context) *ClusterView {
	return clusterView(n.CurrentStatus(ctx))
}

func clusterView(st *Status) *ClusterView {
	v := &ClusterView{Node: st.Name, Cluster: st.Cluster, Scheme: "seq", State: st.State, Leader: st.Leader, Seq: st.Seq,
		IsLeader: st.IsLeader, Members: st.Members, Rejections: st.Rejections, Accepted: st.Accepted, Time: st.Time,
		Observer: st.Observer, Observers: st.Observers,
		Runtime: ClusterRuntime{URL: st.Runtime.URL, Platform: st.Runtime.Platform, Simulated: st.Runtime.Simulated,
			FunctionID: st.Runtime.FunctionID, Checksum: st.Runtime.Checksum, State: st.Runtime.State}}
	if strings.HasPrefix(st.Mode, "signed views") {
		v.Scheme = "term"
	}
	if len(st.key) == ed25519.PublicKeySize {
		v.Runtime.ReceiptKey = bytes.Clone(st.key)
		v.Runtime.KeyID = receipt.KeyID(st.key)
	}
	if v.Members == nil {
		v.Members = []MemberStatus{}
	}
	if v.Rejections == nil {
		v.Rejections = map[election.Reason]uint64{}
	}
	if c := st.cert; c != nil && st.Certificate != nil {
		v.Certificate = &ClusterCertificate{From: st.Certificate.From, AcceptedAt: st.Certificate.At,
			IssuedAt: c.Receipt.Time.UTC(), Output: bytes.Clone(c.Output), Receipt: c.Receipt}
		if v.Scheme == "term" {
			var o election.TermOutcome
			if json.Unmarshal(c.Output, &o) == nil && o.LeaseMs > 0 {
				v.LeaseMillis = o.LeaseMs
				until := c.Receipt.Time.Add(o.Lease()).UTC()
				v.LeaseUntil = &until
			}
		}
	}
	return v
}

// MaxClusterViewSize bounds a GET /cluster body that DecodeClusterView
// accepts: a large cluster's member list, well under it.
const MaxClusterViewSize = 16 << 20

// DecodeClusterView parses a GET /cluster body. It checks the form, not
// the certificate; see Verify.
func DecodeClusterView(b []byte) (*ClusterView, error) {
	if len(b) > MaxClusterViewSize {
		return nil, fmt.Errorf("cluster view is %d bytes, more than %d", len(b), MaxClusterViewSize)
	}
	var v ClusterView
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("cluster view is not valid JSON: %w", err)
	}
	if v.Node == "" {
		return nil, errors.New("cluster view names no node: is this a vouch node's /cluster?")
	}
	return &v, nil
}

// FetchClusterView gets GET /cluster from a node's HTTP endpoint (base is
// http://HOST:PORT) and decodes it.
func FetchClusterView(ctx context.Context, hc *http.Client, base string) (*ClusterView, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/cluster", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxClusterViewSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s/cluster: %w", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s/cluster answered %s (a node older than GET /cluster?)", base, resp.Status)
	}
	return DecodeClusterView(b)
}

// ErrNotVerified is wrapped by every error of ClusterView.Verify.
var ErrNotVerified = errors.New("certificate NOT VERIFIED")

// Verify re-checks the view's certificate here, trusting only the receipt
// key the node reports as attested: the key's fingerprint, the output's
// digest, the receipt's Ed25519 signature, the election function, the
// cluster, and that the certificate names the leader and seq (term) the
// view reports. It does not attest the runtime itself: `vouch attest`
// does, and its key_id must match KeyID.
func (v *ClusterView) Verify() error {
	c := v.Certificate
	switch {
	case c == nil:
		return fmt.Errorf("%w: the node holds no certificate", ErrNotVerified)
	case len(v.Runtime.ReceiptKey) != ed25519.PublicKeySize:
		return fmt.Errorf("%w: the node reports no attested receipt key (%d bytes)", ErrNotVerified, len(v.Runtime.ReceiptKey))
	}
	key := ed25519.PublicKey(v.Runtime.ReceiptKey)
	if subtle.ConstantTimeCompare([]byte(receipt.KeyID(key)), []byte(v.Runtime.KeyID)) != 1 {
		return fmt.Errorf("%w: the receipt key's fingerprint is %.16s…, the node reports key_id %.16s…", ErrNotVerified, receipt.KeyID(key), v.Runtime.KeyID)
	}
	sum := sha256.Sum256(c.Output)
	if hex.EncodeToString(sum[:]) != c.Receipt.OutputSHA256 {
		return fmt.Errorf("%w: sha256(output) is %.16s…, the receipt signs output_sha256 %.16s…", ErrNotVerified, hex.EncodeToString(sum[:]), c.Receipt.OutputSHA256)
	}
	cert := &election.Certificate{Output: c.Output, Receipt: c.Receipt}
	t := election.Trust{Key: key, FunctionID: v.Runtime.FunctionID, Checksum: v.Runtime.Checksum, Cluster: v.Cluster}
	var leader string
	var seq uint64
	if v.Scheme == "term" {
		o, rej := election.VerifyTerm(cert, t)
		if rej != nil {
			return fmt.Errorf("%w: %v", ErrNotVerified, rej)
		}
		leader, seq = o.Leader, o.Term
	} else {
		o, rej := election.Verify(cert, t)
		if rej != nil {
			return fmt.Errorf("%w: %v", ErrNotVerified, rej)
		}
		leader, seq = o.Leader, cert.Seq()
	}
	if leader != v.Leader || seq != v.Seq {
		return fmt.Errorf("%w: the certificate names leader %q (%s %d), the node reports %q (%s %d)", ErrNotVerified, leader, v.Scheme, seq, v.Leader, v.Scheme, v.Seq)
	}
	return nil
}
