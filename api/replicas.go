package api

// ReplicaSet answers GET /v1/replicas: the replicated runtime's raft
// configuration as the answering replica sees it.
type ReplicaSet struct {
	Replicas []ReplicaMember `json:"replicas"`
	// Leader is the leader's replica ID, empty when none is known.
	Leader string `json:"leader"`
	// Self is the answering replica's ID, State its raft state (Leader,
	// Follower, Candidate, Shutdown).
	Self  string `json:"self"`
	State string `json:"state"`
	// LastIndex, CommitIndex and AppliedIndex are the answering
	// replica's log indexes; Term its raft term.
	LastIndex    uint64 `json:"last_index"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	Term         uint64 `json:"term"`
}

// ReplicaMember is one replica of a ReplicaSet.
type ReplicaMember struct {
	ID       string `json:"id"`
	APIURL   string `json:"api_url,omitempty"`
	RaftAddr string `json:"raft_addr"`
	// Suffrage is Voter, Nonvoter or Staging.
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}
