package nodecore

import "crypto/ed25519"

// TrustKey returns the attested receipt key certificates are checked
// against; nil until the runtime has been attested.
func (m *Machine) TrustKey() ed25519.PublicKey { return m.trustKey }
