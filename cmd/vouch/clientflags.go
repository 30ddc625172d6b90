package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"vouch/api"
	"vouch/client"
	"vouch/token"
)

// clientFlags are the flags of every command that talks to a runtime.
type clientFlags struct {
	enclave        string
	ownerFile      string
	ref            string
	allowSimulated bool
	root           string
	keyID          string
	pcrs           pcrFlag
}

func (c *clientFlags) register(fs *flag.FlagSet, withRef bool) {
	fs.StringVar(&c.enclave, "enclave", "", "runtime URL (env VOUCH_ENCLAVE; default "+client.DefaultURL+")")
	fs.StringVar(&c.ownerFile, "owner-token-file", "", "file holding the owner credential (env VOUCH_OWNER_TOKEN or VOUCH_OWNER_TOKEN_FILE; default ./"+defaultDataDir+"/owner.token)")
	fs.BoolVar(&c.allowSimulated, "allow-simulated", false, "accept a runtime with SIMULATED attestation (development only)")
	fs.StringVar(&c.root, "root-fingerprint", "", "pin the attestation root (SHA-256 of its DER, hex)")
	fs.StringVar(&c.keyID, "key-id", "", "pin the runtime's receipt key (its fingerprint, hex)")
	fs.Var(&c.pcrs, "pcr", "accept only these PCR values, as INDEX:HEX (repeat for several; several values per index are alternatives)")
	if withRef {
		fs.StringVar(&c.ref, "ref", "", "function reference file from `vouch token -o json` (env VOUCH_REF)")
	}
}

// loadRef returns the reference named by --ref or $VOUCH_REF, or nil.
func (c *clientFlags) loadRef() (*api.Ref, error) {
	path := c.ref
	if path == "" {
		path = os.Getenv("VOUCH_REF")
	}
	if path == "" {
		return nil, nil
	}
	return api.LoadRef(path)
}

// url returns the runtime URL: the flag, the reference, the environment or
// the default, in that order.
func (c *clientFlags) url(ref *api.Ref) string {
	switch {
	case c.enclave != "":
		return c.enclave
	case ref != nil && ref.EnclaveURL != "":
		return ref.EnclaveURL
	case os.Getenv("VOUCH_ENCLAVE") != "":
		return os.Getenv("VOUCH_ENCLAVE")
	}
	return client.DefaultURL
}

// trust merges the reference's trust block with the flags.
func (c *clientFlags) trust(ref *api.Ref) (api.Trust, error) {
	var t api.Trust
	if ref != nil {
		t = ref.Trust
	}
	if c.root != "" {
		t.RootFingerprint = strings.ToLower(c.root)
	}
	if c.keyID != "" {
		t.KeyID = strings.ToLower(c.keyID)
	}
	if len(c.pcrs) > 0 {
		t.PCRs = map[string][]string(c.pcrs)
	}
	return t, t.Check()
}

// options builds client options. The owner credential is loaded only when
// needOwner is set or it is readily available.
func (c *clientFlags) options(ref *api.Ref, needOwner bool) (client.Options, error) {
	t, err := c.trust(ref)
	if err != nil {
		return client.Options{}, err
	}
	opts := client.Options{Trust: t, AllowSimulated: c.allowSimulated}
	owner, err := c.owner()
	if err != nil && needOwner {
		return opts, err
	}
	opts.OwnerToken = owner
	return opts, nil
}

// owner finds the owner credential.
func (c *clientFlags) owner() (string, error) {
	if c.ownerFile != "" {
		return token.LoadOwnerTokenFile(c.ownerFile)
	}
	if v := strings.TrimSpace(os.Getenv("VOUCH_OWNER_TOKEN")); v != "" {
		return v, token.ValidateOwnerToken(v)
	}
	if p := os.Getenv("VOUCH_OWNER_TOKEN_FILE"); p != "" {
		return token.LoadOwnerTokenFile(p)
	}
	p := filepath.Join(envOr("VOUCH_DATA", defaultDataDir), "owner.token")
	tok, err := token.LoadOwnerTokenFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", withHint(errors.New("no owner credential found"),
			"pass --owner-token-file FILE or set VOUCH_OWNER_TOKEN; `vouch enclave` printed it at first start and keeps it in DATA/owner.token")
	}
	return tok, err
}

// pcrFlag collects --pcr INDEX:HEX values.
type pcrFlag map[string][]string

func (p *pcrFlag) String() string { return fmt.Sprint(map[string][]string(*p)) }

func (p *pcrFlag) Set(v string) error {
	idx, val, ok := strings.Cut(v, ":")
	if !ok || idx == "" || val == "" {
		return fmt.Errorf("want INDEX:HEX, such as 0:%s", strings.Repeat("ab", 48))
	}
	if *p == nil {
		*p = map[string][]string{}
	}
	(*p)[idx] = append((*p)[idx], strings.ToLower(val))
	return nil
}
