package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
)

// clientFlags are the flags of every command that talks to a runtime.
//
// Where a setting can come from several places, the order is the same for
// all of them, as in most tools: a flag, then the environment, then the
// function reference file, then the default. So `--enclave` beats
// $VOUCH_ENCLAVE, which beats the reference's enclave_urls (or
// enclave_url), which beats https://127.0.0.1:7070; and `--token` beats $VOUCH_TOKEN, which beats the
// reference's function_token. The environment is how a user overrides a
// file they were given, for one shell, without editing it.
//
// The owner credential is loaded only by the commands that need it (deploy,
// list, delete, token), which register its flag: running a function never
// sends it.
type clientFlags struct {
	enclave   string
	ownerFile string
	ref       string
	tlsCA     string
	pins      cmdline.Pins
}

func (c *clientFlags) register(fs *flag.FlagSet, withRef bool) {
	fs.StringVar(&c.enclave, "enclave", "", "runtime `URL`, or the URLs of its replicas separated by commas (default: $VOUCH_ENCLAVE, else the reference's enclave_urls or enclave_url, else "+client.DefaultURL+")")
	fs.BoolVar(&c.pins.AllowSimulated, "allow-simulated", false, "accept a runtime with SIMULATED attestation (development only; pin it with --root-fingerprint)")
	fs.StringVar(&c.pins.Root, "root-fingerprint", "", "pin the attestation root: `HEX`, the SHA-256 of its DER (vouch attest prints it)")
	fs.StringVar(&c.pins.KeyID, "key-id", "", "pin the runtime's receipt key: its fingerprint, `HEX`")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "verify the runtime's https certificate against the CA certificates in this PEM `FILE` and its host name, instead of pinning the TLS key its attestation binds (for a load balancer that terminates TLS: the transport then trusts that CA, not the attestation)")
	fs.Var(&c.pins.PCRs, "pcr", "accept only these PCR values, as `INDEX:HEX` (repeat for several; several values per index are alternatives)")
	if withRef {
		fs.StringVar(&c.ref, "ref", "", "the function reference `FILE`, as vouch token -o json writes it (env VOUCH_REF)")
	}
}

// registerOwner adds the owner credential's flag, for the commands that
// need the credential.
func (c *clientFlags) registerOwner(fs *flag.FlagSet) {
	fs.StringVar(&c.ownerFile, "owner-token-file", "", "the `FILE` holding the owner credential (env VOUCH_OWNER_TOKEN or VOUCH_OWNER_TOKEN_FILE; default ./"+defaultDataDir+"/owner.token)")
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

// urls returns the runtime's URLs, one per replica: the flag, the
// environment (both a comma-separated list), the reference or the default,
// in that order.
func (c *clientFlags) urls(ref *api.Ref) []string {
	switch {
	case strings.TrimSpace(c.enclave) != "":
		return splitURLs(c.enclave)
	case strings.TrimSpace(os.Getenv("VOUCH_ENCLAVE")) != "":
		return splitURLs(os.Getenv("VOUCH_ENCLAVE"))
	case ref != nil && len(ref.URLs()) > 0:
		return ref.URLs()
	}
	return []string{client.DefaultURL}
}

// splitURLs splits a comma-separated list of URLs, ignoring spaces and
// empty items.
func splitURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// functionToken returns the function token to run with: --token, then
// $VOUCH_TOKEN, then the reference's. It is never the owner credential
// unless the user passes that explicitly.
func functionToken(flagValue string, ref *api.Ref) string {
	if flagValue != "" {
		return strings.TrimSpace(flagValue)
	}
	if v := strings.TrimSpace(os.Getenv("VOUCH_TOKEN")); v != "" {
		return v
	}
	if ref != nil {
		return ref.FunctionToken
	}
	return ""
}

// options builds client options that print warnings on u: the trust of
// the reference with the flags' pins in its place, and the owner
// credential when needOwner is set: only commands that administer the
// runtime send it.
func (c *clientFlags) options(u *cmdline.UI, ref *api.Ref, needOwner bool) (client.Options, error) {
	opts, err := c.pins.Options(u, ref)
	if err != nil {
		return opts, err
	}
	if c.tlsCA != "" {
		pem, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return opts, err
		}
		if opts.TLSRootCAs, err = client.ParseCAs(pem); err != nil {
			return opts, fmt.Errorf("--tls-ca %s: %w", c.tlsCA, err)
		}
	}
	if !needOwner {
		return opts, nil
	}
	// Over https the credential goes only to a runtime whose attestation
	// binds the connection's key. On loopback the owner administers a
	// runtime on their own machine, where the credential never crosses a
	// network: accept it whatever it attests, as before TLS (a SIMULATED
	// runtime included); elsewhere the trust flags decide.
	if !opts.AllowSimulated && allLoopback(c.urls(ref)) {
		opts.AllowSimulated = true
	}
	opts.OwnerToken, err = cmdline.OwnerToken(c.ownerFile)
	return opts, err
}

// allLoopback reports whether every URL's host is loopback.
func allLoopback(urls []string) bool {
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || !client.Loopback(u.Hostname()) {
			return false
		}
	}
	return true
}
