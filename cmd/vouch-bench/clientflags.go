package main

import (
	"flag"
	"io"

	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
)

// clientFlags are the flags `run` needs to load a runtime at --enclave:
// the trust pins and the owner credential, with the same names, sources
// and order of precedence as in `vouch` (a flag, then the environment,
// then the default).
type clientFlags struct {
	enclave   string
	ownerFile string
	pins      cmdline.Pins
	stderr    io.Writer // where warnings go: the flag set's output
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	c.stderr = fs.Output()
	fs.StringVar(&c.enclave, "enclave", "", "runtime URL to load (default: start one in this process, on loopback, with SIMULATED attestation)")
	fs.BoolVar(&c.pins.AllowSimulated, "allow-simulated", false, "accept a runtime with SIMULATED attestation (development only; pin it with --root-fingerprint)")
	fs.StringVar(&c.pins.Root, "root-fingerprint", "", "pin the attestation root (SHA-256 of its DER, hex; vouch attest prints it)")
	fs.StringVar(&c.pins.KeyID, "key-id", "", "pin the runtime's receipt key (its fingerprint, hex)")
	fs.Var(&c.pins.PCRs, "pcr", "accept only these PCR values, as INDEX:HEX (repeat for several; several values per index are alternatives)")
	fs.StringVar(&c.ownerFile, "owner-token-file", "", "file holding the owner credential (env VOUCH_OWNER_TOKEN or VOUCH_OWNER_TOKEN_FILE; default ./"+cmdline.DefaultDataDir+"/owner.token)")
}

// options builds the client options: the trust pins and the owner
// credential, which `run` needs to deploy the function it loads. Without
// a credential, the error is a hintError.
func (c *clientFlags) options() (client.Options, error) {
	opts, err := c.pins.Options(&cmdline.UI{Prog: prog, Err: c.stderr}, nil)
	if err != nil {
		return opts, err
	}
	opts.OwnerToken, err = cmdline.OwnerToken(c.ownerFile)
	return opts, err
}

// hintError is the error with advice that options returns when it finds
// no owner credential.
type hintError = cmdline.HintError
