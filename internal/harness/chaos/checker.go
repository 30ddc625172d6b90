package chaos

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/node"
	"github.com/vouch-dev/vouch/receipt"
)

// Trust is what the checker verifies certificates against: the runtime's
// receipt keys (a certificate must verify under one of them), the election
// function and the cluster. Terms selects the signed-views scheme (term
// certificates, election.VerifyTerm) rather than the member-list scheme
// (receipt seq, election.Verify).
type Trust struct {
	Keys       []ed25519.PublicKey
	FunctionID string
	Checksum   string
	Cluster    string
	Terms      bool
}

// Report is what the checker found in a set of event logs.
type Report struct {
	// Events is the number of log lines read; Accepted and Acted count
	// the cert_accepted and leader_acted events.
	Events, Accepted, Acted int
	// Elections is the number of distinct seqs (member-list scheme) or
	// terms (signed views) that some node accepted.
	Elections int
	// Reaccepted counts certificates a node accepted again with the same
	// seq or term and the same content: harmless (a restart between
	// logging the certificate and recording its seq), reported apart.
	Reaccepted int
	// Leaders maps each seq or term to its leader.
	Leaders map[uint64]string
	// Receipts lists the receipt of every accepted certificate, for
	// CheckReceipts across these logs and receipts seen elsewhere.
	Receipts []SeenReceipt
	// Violations lists every broken rule, in a stable order.
	Violations []string
}

// SeenReceipt is one signed receipt somebody saw: its seq, the signature
// (one receipt, one signature: Ed25519 is deterministic) and where.
type SeenReceipt struct {
	Seq       uint64
	Signature []byte
	Where     string
}

// CheckReceipts checks that no receipt seq was issued twice: every
// receipt seen with one seq is the same receipt (the same signature),
// whichever replica signed it and whoever saw it. It returns one
// violation per reused seq, in seq order.
func CheckReceipts(rs []SeenReceipt) []string {
	first := map[uint64]SeenReceipt{}
	reused := map[uint64]int{}
	for _, r := range rs {
		prev, ok := first[r.Seq]
		if !ok {
			first[r.Seq] = r
			continue
		}
		if !bytes.Equal(prev.Signature, r.Signature) {
			reused[r.Seq]++
		}
	}
	seqs := make([]uint64, 0, len(reused))
	for s := range reused {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	var out []string
	for _, s := range seqs {
		var where []string
		for _, r := range rs {
			if r.Seq == s && len(where) < 4 {
				where = append(where, r.Where)
			}
		}
		out = append(out, fmt.Sprintf("receipt seq %d was issued for %d different receipts (seen by %s): a seq issued twice", s, reused[s]+1, strings.Join(where, ", ")))
	}
	return out
}

// OK reports whether no rule was broken.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

func (r *Report) violate(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

// Log is one node's event log.
type Log struct {
	// Node is the member ID the log belongs to.
	Node string
	// Data is the log's contents, JSON lines.
	Data []byte
}

// CheckFiles reads event logs, one file per node (node name to path), and
// checks them.
func CheckFiles(files map[string]string, t Trust) (*Report, error) {
	var logs []Log
	for name, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		logs = append(logs, Log{Node: name, Data: b})
	}
	return Check(logs, t), nil
}

// key is one certificate as the checker saw it.
type seen struct {
	leader string
	output []byte // the function's output: one per term, or per seq
	node   string
}

// Check checks the event logs against the election's safety rules:
//
//   - every line is a whole, well-formed event of the node whose log it is;
//   - every accepted certificate verifies offline, from its wire form,
//     under the runtime's key, function, checksum and cluster, and the
//     event's seq, term and leader are the certificate's;
//   - no two nodes accepted different leaders (or, with terms, different
//     certificates) for one seq or term, and a receipt seq never names
//     two different outputs;
//   - each node accepted strictly increasing seqs or terms across its
//     whole log, restarts included (it persists the highest one);
//   - a node acted as leader for a seq or term only after it accepted a
//     certificate for that seq or term naming it, and was still holding
//     it, and no two nodes acted for one seq or term.
func Check(logs []Log, t Trust) *Report {
	r := &Report{Leaders: map[uint64]string{}}
	sort.Slice(logs, func(i, j int) bool { return logs[i].Node < logs[j].Node })
	bySeq := map[uint64]seen{}     // seq or term -> first certificate seen
	byReceipt := map[uint64]seen{} // receipt seq -> output (both schemes)
	actors := map[uint64]string{}
	trust := election.Trust{FunctionID: t.FunctionID, Checksum: t.Checksum, Cluster: t.Cluster}
	for _, lg := range logs {
		var last uint64
		var lastLeader string
		var lastOut []byte
		sc := bufio.NewScanner(bytes.NewReader(lg.Data))
		sc.Buffer(make([]byte, 0, 64<<10), 4*election.MaxCertSize)
		line := 0
		for sc.Scan() {
			line++
			raw := sc.Bytes()
			if len(bytes.TrimSpace(raw)) == 0 {
				continue
			}
			r.Events++
			var ev node.Event
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ev); err != nil {
				r.violate("%s line %d: not a whole event (%v): %.80q", lg.Node, line, err, raw)
				continue
			}
			where := fmt.Sprintf("%s line %d", lg.Node, line)
			if ev.Node != lg.Node {
				r.violate("%s: event of node %q in the log of %q", where, ev.Node, lg.Node)
			}
			switch ev.Event {
			case "cert_accepted":
				r.Accepted++
				k, leader, out, rcpt, ok := checkCert(r, where, ev, trust, t)
				if !ok {
					continue
				}
				receiptSeq := rcpt.Seq
				r.Receipts = append(r.Receipts, SeenReceipt{Seq: rcpt.Seq, Signature: rcpt.Signature, Where: where})
				if prev, dup := bySeq[k]; !dup {
					bySeq[k] = seen{leader: leader, output: out, node: lg.Node}
					r.Leaders[k] = leader
				} else if prev.leader != leader {
					r.violate("%s: two leaders for %s %d: %s accepted %q, %s accepted %q", where, unit(t), k, prev.node, prev.leader, lg.Node, leader)
				} else if t.Terms && !bytes.Equal(prev.output, out) {
					r.violate("%s: two different certificates for term %d (%s and %s accepted them): equivocation", where, k, prev.node, lg.Node)
				}
				if prev, dup := byReceipt[receiptSeq]; !dup {
					byReceipt[receiptSeq] = seen{output: out, node: lg.Node}
				} else if !bytes.Equal(prev.output, out) {
					r.violate("%s: receipt seq %d was issued for two different outputs (%s and %s accepted them): the runtime reused a seq", where, receiptSeq, prev.node, lg.Node)
				}
				switch {
				case k > last:
				case k == last && leader == lastLeader && bytes.Equal(out, lastOut):
					r.Reaccepted++
				default:
					r.violate("%s: accepted %s %d after %s %d: not increasing", where, unit(t), k, unit(t), last)
				}
				if k >= last {
					last, lastLeader, lastOut = k, leader, out
				}
			case "leader_acted":
				r.Acted++
				if ev.Leader != lg.Node {
					r.violate("%s: leader_acted names %q", where, ev.Leader)
				}
				if ev.Seq != last || lastLeader != lg.Node {
					r.violate("%s: acted as leader for %s %d while holding %s %d with leader %q", where, unit(t), ev.Seq, unit(t), last, lastLeader)
				}
				if prev, ok := actors[ev.Seq]; ok && prev != lg.Node {
					r.violate("%s: both %s and %s acted as leader for %s %d", where, prev, lg.Node, unit(t), ev.Seq)
				}
				actors[ev.Seq] = lg.Node
			default:
				r.violate("%s: unknown event %q", where, ev.Event)
			}
		}
		if err := sc.Err(); err != nil {
			r.violate("%s: reading the log: %v", lg.Node, err)
		}
	}
	r.Elections = len(bySeq)
	return r
}

// checkCert re-verifies an accepted certificate from its wire form and
// returns its seq or term, leader, output and receipt.
func checkCert(r *Report, where string, ev node.Event, trust election.Trust, t Trust) (k uint64, leader string, out []byte, rcpt receipt.Receipt, ok bool) {
	if len(ev.Cert) == 0 {
		r.violate("%s: cert_accepted without the certificate", where)
		return
	}
	cert, err := election.DecodeCertificate(ev.Cert)
	if err != nil {
		r.violate("%s: accepted an undecodable certificate: %v", where, err)
		return
	}
	var reasons []string
	for _, key := range t.Keys {
		trust.Key = key
		if t.Terms {
			o, rej := election.VerifyTerm(cert, trust)
			if rej == nil {
				k, leader, ok = o.Term, o.Leader, true
				if ev.Term != o.Term || ev.Seq != o.Term || ev.MembersDigest != o.MembersDigest {
					r.violate("%s: event says term %d seq %d digest %.12s, the certificate term %d digest %.12s", where, ev.Term, ev.Seq, ev.MembersDigest, o.Term, o.MembersDigest)
				}
				break
			}
			reasons = append(reasons, rej.Error())
		} else {
			o, rej := election.Verify(cert, trust)
			if rej == nil {
				k, leader, ok = cert.Seq(), o.Leader, true
				if ev.Seq != cert.Seq() || ev.MembersDigest != o.MembersDigest {
					r.violate("%s: event says seq %d digest %.12s, the certificate seq %d digest %.12s", where, ev.Seq, ev.MembersDigest, cert.Seq(), o.MembersDigest)
				}
				break
			}
			reasons = append(reasons, rej.Error())
		}
	}
	if !ok {
		if len(t.Keys) == 0 {
			reasons = append(reasons, "no runtime key to verify against")
		}
		r.violate("%s: accepted a certificate that fails verification: %s", where, strings.Join(reasons, "; "))
		return
	}
	if ev.Leader != leader {
		r.violate("%s: event says leader %q, the certificate %q", where, ev.Leader, leader)
	}
	return k, leader, cert.Output, cert.Receipt, true
}

func unit(t Trust) string {
	if t.Terms {
		return "term"
	}
	return "seq"
}

// WriteReport writes the report's violations, one per line, at most max
// of them.
func (r *Report) WriteReport(w io.Writer, max int) {
	for i, v := range r.Violations {
		if i == max {
			fmt.Fprintf(w, "... and %d more\n", len(r.Violations)-max)
			return
		}
		fmt.Fprintln(w, v)
	}
}

// Durable is what the harness made durable through the runtime and
// expects every live replica to keep: functions deployed, functions
// deleted, and that a revoked token stays revoked.
type Durable struct {
	Functions []string // function IDs every replica must list
	Deleted   []string // function IDs no replica may list
}

// ReplicaView is what one live replica showed at the end of a run.
type ReplicaView struct {
	Replica string
	// Listed holds the function IDs of GET /v1/functions on the replica.
	Listed []string
	// RevokedServed and DeletedServed report that a run with the revoked
	// token, or of the deleted function, sent to this replica came back
	// signed.
	RevokedServed, DeletedServed bool
}

// CheckDurable checks that no deployed function, deletion or revocation
// was lost on any live replica.
func CheckDurable(d Durable, views []ReplicaView) []string {
	var out []string
	for _, v := range views {
		listed := map[string]bool{}
		for _, id := range v.Listed {
			listed[id] = true
		}
		for _, id := range d.Functions {
			if !listed[id] {
				out = append(out, fmt.Sprintf("replica %s lost the deployed function %s", v.Replica, id))
			}
		}
		for _, id := range d.Deleted {
			if listed[id] {
				out = append(out, fmt.Sprintf("replica %s lists the deleted function %s again", v.Replica, id))
			}
		}
		if v.RevokedServed {
			out = append(out, fmt.Sprintf("replica %s: a run with the revoked token was signed: the revocation was lost", v.Replica))
		}
		if v.DeletedServed {
			out = append(out, fmt.Sprintf("replica %s: a run of the deleted function was signed: the deletion was lost", v.Replica))
		}
	}
	return out
}
