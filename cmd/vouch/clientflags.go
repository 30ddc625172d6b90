package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/token"
)

// clientFlags are the flags of every command that talks to a runtime.
//
// Where a setting can come from several places, the order is the same for
// all of them, as in most tools: a flag, then the environment, then the
// function reference file, then the default. So `--enclave` beats
// $VOUCH_ENCLAVE, which beats the reference's enclave_url, which beats
// http://127.0.0.1:7070; and `--token` beats $VOUCH_TOKEN, which beats the
// reference's function_token. The environment is how a user overrides a
// file they were given, for one shell, without editing it.
//
// The owner credential is loaded only by the commands that need it (deploy,
// list, delete, token), which register its flag: running a function never
// sends it.
type clientFlags struct {
	enclave        string
	ownerFile      string
	ref            string
	allowSimulated bool
	root           string
	keyID          string
	pcrs           pcrFlag
	// stderr is where warnings go: the ui's stderr, which the command
	// table (command.flagSet) or newFlags made the flag set's output.
	stderr io.Writer
}

func (c *clientFlags) register(fs *flag.FlagSet, withRef bool) {
	c.stderr = fs.Output()
	fs.StringVar(&c.enclave, "enclave", "", "runtime `URL` (default: $VOUCH_ENCLAVE, else the reference's enclave_url, else "+client.DefaultURL+")")
	fs.BoolVar(&c.allowSimulated, "allow-simulated", false, "accept a runtime with SIMULATED attestation (development only; pin it with --root-fingerprint)")
	fs.StringVar(&c.root, "root-fingerprint", "", "pin the attestation root: `HEX`, the SHA-256 of its DER (vouch attest prints it)")
	fs.StringVar(&c.keyID, "key-id", "", "pin the runtime's receipt key: its fingerprint, `HEX`")
	fs.Var(&c.pcrs, "pcr", "accept only these PCR values, as `INDEX:HEX` (repeat for several; several values per index are alternatives)")
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

// url returns the runtime URL: the flag, the environment, the reference or
// the default, in that order.
func (c *clientFlags) url(ref *api.Ref) string {
	switch {
	case c.enclave != "":
		return c.enclave
	case strings.TrimSpace(os.Getenv("VOUCH_ENCLAVE")) != "":
		return strings.TrimSpace(os.Getenv("VOUCH_ENCLAVE"))
	case ref != nil && ref.EnclaveURL != "":
		return ref.EnclaveURL
	}
	return client.DefaultURL
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
// needOwner is set: only commands that administer the runtime send it.
func (c *clientFlags) options(ref *api.Ref, needOwner bool) (client.Options, error) {
	t, err := c.trust(ref)
	if err != nil {
		return client.Options{}, err
	}
	if w := ref.FileWarning(); w != nil {
		c.warnf("%v", w)
	}
	if c.allowSimulated && t.RootFingerprint == "" {
		c.warnf("--allow-simulated without --root-fingerprint accepts ANY SIMULATED attestation document, and anyone can make one: " +
			"this runtime's keys prove nothing. Pin the runtime's simulated root with --root-fingerprint HEX (`vouch attest --allow-simulated` prints it)")
	}
	opts := client.Options{Trust: t, AllowSimulated: c.allowSimulated, Logger: c.logger()}
	if needOwner {
		if opts.OwnerToken, err = c.owner(); err != nil {
			return opts, err
		}
	}
	return opts, nil
}

func (c *clientFlags) warnf(format string, args ...any) {
	if c.stderr != nil {
		fmt.Fprintf(c.stderr, "vouch: warning: "+format+"\n", args...)
	}
}

// logger returns a logger for the client library that prints its warnings
// the CLI's way: "vouch: warning: …".
func (c *clientFlags) logger() *slog.Logger {
	if c.stderr == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(&cliHandler{w: c.stderr})
}

// cliHandler prints warnings and errors as "vouch: warning: msg (k=v, …)".
type cliHandler struct {
	w     io.Writer
	attrs []slog.Attr
}

func (h *cliHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *cliHandler) Handle(_ context.Context, r slog.Record) error {
	var kv []string
	for _, a := range h.attrs {
		kv = append(kv, a.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		kv = append(kv, a.String())
		return true
	})
	line := "vouch: warning: " + r.Message
	if len(kv) > 0 {
		line += " (" + strings.Join(kv, ", ") + ")"
	}
	_, err := fmt.Fprintln(h.w, line)
	return err
}

func (h *cliHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &cliHandler{w: h.w, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *cliHandler) WithGroup(string) slog.Handler { return h }

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
		return fmt.Errorf("want INDEX:HEX, such as 0:%s", strings.Repeat("ab", 32))
	}
	if *p == nil {
		*p = map[string][]string{}
	}
	(*p)[idx] = append((*p)[idx], strings.ToLower(val))
	return nil
}
