package main

import (
	"errors"
	"fmt"

	"github.com/vouch-dev/vouch/election/members"
)

// Input is the function's request, in the original demo's field names.
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
	out, err := decide(in)
	if err != nil {
		return nil, err
	}
	return encodeOutput(out), nil
}

func decide(raw []byte) (*Output, error) {
	in, err := decodeInput(raw)
	if err != nil {
		return nil, fmt.Errorf("%v (want {\"cluster\":\"demo\",\"node_list\":[\"5000\",\"5001\"]})", err)
	}
	if in.NodeList == nil {
		return nil, errors.New("malformed input: node_list is missing")
	}
	set, err := members.New(in.NodeList)
	if err != nil {
		return nil, err
	}
	if in.Cluster == "" {
		in.Cluster = members.DefaultCluster
	}
	if err := members.ValidCluster(in.Cluster); err != nil {
		return nil, err
	}
	return &Output{
		Cluster:       in.Cluster,
		Leader:        set.Highest(),
		Members:       set.IDs(),
		MembersDigest: set.Digest(),
	}, nil
}
