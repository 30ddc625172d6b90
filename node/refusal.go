package node

import "github.com/vouch-dev/vouch/node/internal/nodecore"

// IsLeaseRefusal reports whether err is the election function's refusal
// to renew the caller's lease (code lease_not_renewed). The runtime
// withholds a function's message when the input was sealed; such a
// refusal looks like any other failed run.
func IsLeaseRefusal(err error) bool { return nodecore.IsLeaseRefusal(err) }
