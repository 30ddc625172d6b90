package main

import (
	"encoding/hex"
	"strings"

	"github.com/vouch-dev/vouch/election/members"
	"github.com/vouch-dev/vouch/guest"
)

// Input is the function's request, in the original demo's field names.
// node_list's elements are strings or, as the original demo sent them,
// non-negative integers (see nodeID); NodeList holds them as strings.
type Input struct {
	Cluster  string   `json:"cluster"`
	NodeList []string `json:"node_list"`
}

// Output is the function's answer.
type Output struct {
	Cluster       string   `json:"cluster"`
	Leader        string   `json:"leader"`
	Members       []string `json:"members"`
	MembersDigest string   `json:"members_digest"`
}

func handle(in []byte) ([]byte, error) {
	if out, ok := answer(in); ok {
		return out, nil
	}
	out, err := decide(in)
	if err != nil {
		return nil, err
	}
	return encodeOutput(out), nil
}

func decide(raw []byte) (*Output, error) {
	in, err := decodeInput(raw)
	if err != nil {
		if r, ok := err.(*guest.Refusal); ok {
			return nil, r
		}
		return nil, guest.Refuse(guest.MalformedInput, "%v (want {\"cluster\":\"demo\",\"node_list\":[\"5000\",\"5001\"]})", err)
	}
	switch {
	case in.NodeList == nil:
		return nil, guest.Refuse(guest.MissingValue, "malformed input: node_list is missing")
	case len(in.NodeList) == 0:
		return nil, guest.Refuse(guest.MissingValue, "invalid member list: node_list is empty; an election needs at least one member")
	case len(in.NodeList) > members.MaxMembers:
		return nil, guest.Refuse(guest.TooManyValues, "node_list has %d members, more than the limit of %d", len(in.NodeList), members.MaxMembers)
	}
	set, err := members.New(in.NodeList)
	if err != nil {
		if strings.Contains(err.Error(), "duplicate member ID") {
			return nil, guest.Refuse(guest.DuplicateValue, "%v (a number and a string of the same digits, such as 1 and \"1\", name the same member)", err)
		}
		return nil, guest.Refuse(guest.InvalidValue, "%v", err)
	}
	if in.Cluster == "" {
		in.Cluster = members.DefaultCluster
	}
	if err := members.ValidCluster(in.Cluster); err != nil {
		return nil, guest.Refuse(guest.InvalidValue, "%v", err)
	}
	return &Output{
		Cluster:       in.Cluster,
		Leader:        set.Highest(),
		Members:       set.IDs(),
		MembersDigest: digest(set.IDs()),
	}, nil
}

// digest is members.Digest with the host's SHA-256 (guest.SHA256), which
// in wasm costs a small fraction of Go's.
func digest(sorted []string) string {
	sum := guest.SHA256(members.Preimage(sorted))
	return hex.EncodeToString(sum[:])
}
