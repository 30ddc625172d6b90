package join

import (
	"context"
	"net/http"
)

// Handler serves POST ChallengePath and POST JoinPath.
//
// leader says whether this replica leads and, if not, the leader's API URL
// (empty when unknown). A follower answers 421 not_leader with leader_url,
// or 503 no_leader, before it does anything else. After Admit succeeds the
// handler calls admit (the server adds the joiner as a raft voter, possibly
// in the background); if admit fails the joiner gets its error (an
// *api.Error is sent as is) and no keys. Otherwise it answers the Response.
func (m *Member) Handler(admit func(ctx context.Context, a *Admission) error, leader func() (isLeader bool, leaderURL string)) http.Handler {
	return http.NotFoundHandler()
}
