package node

import "github.com/vouch-dev/vouch/node/internal/nodecore"

// IsLeaseRefusal reports whether err is the election function's refusal
// to renew the caller's lease (code lease_not_renewed), whether the input
// was sealed (the runtime passes the refusal's code) or plaintext.
func IsLeaseRefusal(err error) bool { return nodecore.IsLeaseRefusal(err) }
