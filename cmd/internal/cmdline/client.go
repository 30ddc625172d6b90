package cmdline

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/token"
)

// DefaultDataDir is where `vouch enclave` keeps its state unless
// $VOUCH_DATA says otherwise, and so where the commands look for the
// owner credential.
const DefaultDataDir = "vouch-data"

// Pins are the flags that say which runtime a command believes:
// --allow-simulated, --root-fingerprint, --key-id and --pcr. Each command
// registers them with its own help.
type Pins struct {
	AllowSimulated bool
	Root           string // the attestation root's fingerprint, hex
	KeyID          string // the receipt key's fingerprint, hex
	PCRs           PCRFlag
}

// Trust returns the trust block of ref (none if ref is nil) with the pins
// given as flags in place of its own.
func (p *Pins) Trust(ref *api.Ref) (api.Trust, error) {
	var t api.Trust
	if ref != nil {
		t = ref.Trust
	}
	if p.Root != "" {
		t.RootFingerprint = strings.ToLower(p.Root)
	}
	if p.KeyID != "" {
		t.KeyID = strings.ToLower(p.KeyID)
	}
	if len(p.PCRs) > 0 {
		t.PCRs = map[string][]string(p.PCRs)
	}
	return t, t.Check()
}

// Options returns client options that trust what Trust(ref) returns,
// without the owner credential (see OwnerToken). It warns on u about a
// readable reference file and about SIMULATED attestation with no pinned
// root, and the client library's warnings go to u too.
func (p *Pins) Options(u *UI, ref *api.Ref) (client.Options, error) {
	t, err := p.Trust(ref)
	if err != nil {
		return client.Options{}, err
	}
	if w := ref.FileWarning(); w != nil {
		u.Warnf("%v", w)
	}
	if p.AllowSimulated && t.RootFingerprint == "" {
		u.Warnf("--allow-simulated without --root-fingerprint accepts ANY SIMULATED attestation document, and anyone can make one: " +
			"this runtime's keys prove nothing. Pin the runtime's simulated root with --root-fingerprint HEX (`vouch attest --allow-simulated` prints it)")
	}
	return client.Options{Trust: t, AllowSimulated: p.AllowSimulated, Logger: u.Logger()}, nil
}

// OwnerToken finds the owner credential, first found first: file (the
// --owner-token-file flag), $VOUCH_OWNER_TOKEN, $VOUCH_OWNER_TOKEN_FILE,
// then DATA/owner.token with DATA from $VOUCH_DATA or DefaultDataDir.
func OwnerToken(file string) (string, error) {
	if file != "" {
		return token.LoadOwnerTokenFile(file)
	}
	if v := strings.TrimSpace(os.Getenv("VOUCH_OWNER_TOKEN")); v != "" {
		return v, token.ValidateOwnerToken(v)
	}
	if p := os.Getenv("VOUCH_OWNER_TOKEN_FILE"); p != "" {
		return token.LoadOwnerTokenFile(p)
	}
	data := strings.TrimSpace(os.Getenv("VOUCH_DATA"))
	if data == "" {
		data = DefaultDataDir
	}
	tok, err := token.LoadOwnerTokenFile(filepath.Join(data, "owner.token"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", WithHint(errors.New("no owner credential found"),
			"pass --owner-token-file FILE or set VOUCH_OWNER_TOKEN; `vouch enclave` printed it at first start and keeps it in DATA/owner.token")
	}
	return tok, err
}

// PCRFlag collects --pcr INDEX:HEX values; several for one index are
// alternatives.
type PCRFlag map[string][]string

func (p *PCRFlag) String() string { return fmt.Sprint(map[string][]string(*p)) }

func (p *PCRFlag) Set(v string) error {
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
