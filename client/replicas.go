package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/vouch-dev/vouch/api"
)

// Members returns the replicated runtime's raft configuration as the
// replica that answers sees it (GET /v1/replicas). A single runtime answers
// 404 (an *api.Error).
func (c *Client) Members(ctx context.Context) (*api.ReplicaSet, error) {
	var out api.ReplicaSet
	if err := c.call(ctx, true, func(rep *replica) error {
		return c.do(ctx, rep, http.MethodGet, "/v1/replicas", nil, "", c.opts.OwnerToken, &out)
	}); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveReplica removes the replica id from the replicated runtime's raft
// configuration (DELETE /v1/replicas/{id}, owner credential; the leader
// serves it).
func (c *Client) RemoveReplica(ctx context.Context, id string) error {
	return c.call(ctx, false, func(rep *replica) error {
		return c.do(ctx, rep, http.MethodDelete, "/v1/replicas/"+url.PathEscape(id), nil, "", c.opts.OwnerToken, nil)
	})
}
