package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/receipt"
)

// PresentFloor presents a proof of rollback to the runtime (POST
// /v1/functions/{id}/floor): a receipt the runtime signed for function id
// and its output. The runtime moves its seqs, and the function's terms,
// past it when its state does not know it (docs/API.md). It needs no
// credential; the answer is informational, not signed.
func (c *Client) PresentFloor(ctx context.Context, id string, rc receipt.Receipt, output []byte) (*api.FloorResult, error) {
	body, err := json.Marshal(api.FloorRequest{Receipt: rc, Output: output})
	if err != nil {
		return nil, err
	}
	// Presenting the same proof twice is harmless, so it may be re-sent.
	var res api.FloorResult
	err = c.call(ctx, true, func(rep *replica) error {
		return c.do(ctx, rep, http.MethodPost, "/v1/functions/"+url.PathEscape(id)+"/floor", body, "application/json", "", &res)
	})
	if err != nil {
		return nil, err
	}
	return &res, nil
}
