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

// clientFlags are the flags `run` needs to load a runtime at --enclave:
// the trust pins and the owner credential, with the same names, sources
// and order of precedence as in `vouch` (a flag, then the environment,
// then the default).
type clientFlags struct {
	enclave        string
	ownerFile      string
	allowSimulated bool
	root           string
	keyID          string
	pcrs           pcrFlag
	stderr         io.Writer
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	c.stderr = fs.Output()
	fs.StringVar(&c.enclave, "enclave", "", "runtime URL to load (default: start one in this process, on loopback, with SIMULATED attestation)")
	fs.BoolVar(&c.allowSimulated, "allow-simulated", false, "accept a runtime with SIMULATED attestation (development only; pin it with --root-fingerprint)")
	fs.StringVar(&c.root, "root-fingerprint", "", "pin the attestation root (SHA-256 of its DER, hex; `vouch attest` prints it)")
	fs.StringVar(&c.keyID, "key-id", "", "pin the runtime's receipt key (its fingerprint, hex)")
	fs.Var(&c.pcrs, "pcr", "accept only these PCR values, as INDEX:HEX (repeat for several; several values per index are alternatives)")
	fs.StringVar(&c.ownerFile, "owner-token-file", "", "file holding the owner credential (env VOUCH_OWNER_TOKEN or VOUCH_OWNER_TOKEN_FILE; default ./vouch-data/owner.token)")
}

// options builds the client options: the trust pins and the owner
// credential, which `run` needs to deploy the function it loads.
func (c *clientFlags) options() (client.Options, error) {
	t := api.Trust{RootFingerprint: strings.ToLower(c.root), KeyID: strings.ToLower(c.keyID)}
	if len(c.pcrs) > 0 {
		t.PCRs = map[string][]string(c.pcrs)
	}
	if err := t.Check(); err != nil {
		return client.Options{}, err
	}
	if c.allowSimulated && t.RootFingerprint == "" {
		c.warnf("--allow-simulated without --root-fingerprint accepts ANY SIMULATED attestation document, and anyone can make one: " +
			"this runtime's keys prove nothing. Pin the runtime's simulated root with --root-fingerprint HEX (`vouch attest --allow-simulated` prints it)")
	}
	opts := client.Options{Trust: t, AllowSimulated: c.allowSimulated, Logger: slog.New(&warnHandler{w: c.stderr})}
	var err error
	opts.OwnerToken, err = c.owner()
	return opts, err
}

func (c *clientFlags) warnf(format string, args ...any) {
	fmt.Fprintf(c.stderr, prog+": warning: "+format+"\n", args...)
}

// owner finds the owner credential: --owner-token-file, $VOUCH_OWNER_TOKEN,
// $VOUCH_OWNER_TOKEN_FILE, then DATA/owner.token with DATA from $VOUCH_DATA
// or ./vouch-data.
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
	data := os.Getenv("VOUCH_DATA")
	if data == "" {
		data = "vouch-data"
	}
	tok, err := token.LoadOwnerTokenFile(filepath.Join(data, "owner.token"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", withHint(errors.New("no owner credential found"),
			"pass --owner-token-file FILE or set VOUCH_OWNER_TOKEN; `vouch enclave` printed it at first start and keeps it in DATA/owner.token")
	}
	return tok, err
}

// warnHandler prints the client library's warnings and errors as
// "vouch-bench: warning: msg (k=v, …)".
type warnHandler struct {
	w     io.Writer
	attrs []slog.Attr
}

func (h *warnHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *warnHandler) Handle(_ context.Context, r slog.Record) error {
	var kv []string
	for _, a := range h.attrs {
		kv = append(kv, a.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		kv = append(kv, a.String())
		return true
	})
	line := prog + ": warning: " + r.Message
	if len(kv) > 0 {
		line += " (" + strings.Join(kv, ", ") + ")"
	}
	_, err := fmt.Fprintln(h.w, line)
	return err
}

func (h *warnHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &warnHandler{w: h.w, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *warnHandler) WithGroup(string) slog.Handler { return h }

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
