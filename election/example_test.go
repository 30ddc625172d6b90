package election_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/election"
	"github.com/vouch-dev/vouch/receipt"
)

// A node checks a certificate before it accepts it: here one signed by the
// runtime it trusts, then the same one with its seq changed.
func Example() {
	runtimeKey := ed25519.NewKeyFromSeed(make([]byte, 32))
	checksum := strings.Repeat("ab", 32)
	output := []byte(`{"cluster":"demo","leader":"5001","members":["5000","5001"],"members_digest":"` +
		digest("5000\n5001") + `"}`)
	input := election.Request("demo", []string{"5000", "5001"})
	cert := &election.Certificate{Output: output, Receipt: receipt.Receipt{
		FunctionID: "leaderfn", FunctionChecksum: checksum,
		InputSHA256: digest(string(input)), OutputSHA256: digest(string(output)),
		Seq: 7, Time: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
	}}
	cert.Receipt.Sign(runtimeKey)

	trust := election.Trust{Key: runtimeKey.Public().(ed25519.PublicKey), FunctionID: "leaderfn", Checksum: checksum, Cluster: "demo"}
	core := election.New(election.Config{Self: "5000", Trust: trust})
	core.SetView([]string{"5000", "5001"}, time.Now())

	forged := *cert
	forged.Receipt.Seq = 8
	fmt.Println("forged:", core.Receive(&forged, time.Now()).Rejected.Reason)
	a := core.Receive(cert, time.Now())
	fmt.Println("genuine: leader", a.LeaderChanged.Leader, "seq", a.Accepted.Seq())
	// Output:
	// forged: bad_signature
	// genuine: leader 5001 seq 7
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
