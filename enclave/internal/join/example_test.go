package join_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"net/http/httptest"
	"os"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/enclave/internal/join"
	"github.com/vouch-dev/vouch/enclave/internal/servicekeys"
)

// A member of a SIMULATED service admits a joiner that runs the same code
// under the same simulated root, and seals it the service keys.
func Example() {
	dir, err := os.MkdirTemp("", "join-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	pcr0 := sha256.Sum256([]byte("the vouch binary"))

	// The member: replica r1, leader of the service.
	memberAtt, err := attest.NewSimulated(dir, pcr0[:])
	if err != nil {
		panic(err)
	}
	keys, err := servicekeys.Generate()
	if err != nil {
		panic(err)
	}
	rk := []byte(keys.Receipt.Public().(ed25519.PublicKey))
	identity := func(ctx context.Context, nonce []byte) ([]byte, error) {
		return memberAtt.Attest(ctx, attest.Request{Nonce: nonce, PublicKey: rk,
			UserData: api.IdentityUserDataReplica(rk, keys.HPKE.PublicKey(), "r1")})
	}
	member := join.NewMember(join.Policy{Attester: memberAtt}, keys, identity)
	admit := func(_ context.Context, a *join.Admission) error {
		fmt.Printf("admitted %s (raft %s)\n", a.ReplicaID, a.RaftAddr)
		return nil // the server adds a raft voter here
	}
	leader := func() (bool, string) { return true, "" }
	srv := httptest.NewServer(member.Handler(admit, leader))
	defer srv.Close()

	// The joiner: replica r2, same binary, same simulated root.
	joinerAtt, err := attest.NewSimulated(dir, pcr0[:])
	if err != nil {
		panic(err)
	}
	j := &join.Joiner{Attester: joinerAtt, ReplicaID: "r2", RaftAddr: "127.0.0.1:30001", APIURL: "http://127.0.0.1:30002"}
	got, err := j.Join(context.Background(), srv.URL)
	if err != nil {
		panic(err)
	}
	fmt.Println("keys match:", bytes.Equal(got.Marshal(), keys.Marshal()))
	// Output:
	// admitted r2 (raft 127.0.0.1:30001)
	// keys match: true
}
