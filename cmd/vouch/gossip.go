package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/internal/secretfile"
	"github.com/vouch-dev/vouch/node"
)

// maxGossipKeyFile bounds a gossip key file.
const maxGossipKeyFile = 4 << 10

// readGossipKeyFile reads the cluster's gossip keys from a private file:
// base64 keys, one a line (or separated by commas), the first encrypts and
// the others are only accepted (during a rotation).
func readGossipKeyFile(path string) (primary []byte, extra [][]byte, err error) {
	data, err := secretfile.Read(path, maxGossipKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("gossip key file: %w", err)
	}
	if primary, extra, err = api.ParseGossipKeyList(string(data)); err != nil {
		return nil, nil, fmt.Errorf("gossip key file %s: %w", path, err)
	}
	return primary, extra, nil
}

// tokenGossipKeys returns the gossip keys a new reference carries: those of
// an existing reference of the cluster (clusterRef), those of a key file,
// or a fresh key for a new cluster. It runs before a token is minted, so a
// bad key file costs no token.
func tokenGossipKeys(clusterRef, keyFile string, u *cmdline.UI) (primary string, extra []string, err error) {
	switch {
	case clusterRef != "" && keyFile != "":
		return "", nil, cmdline.Usagef("give --cluster-ref FILE or --gossip-key-file FILE, not both")
	case clusterRef != "":
		r, err := api.LoadRef(clusterRef)
		if err != nil {
			return "", nil, cmdline.WithHint(fmt.Errorf("--cluster-ref: %w", err), "name a reference of the cluster the new one joins, as `vouch token -o json` wrote it")
		}
		if w := r.FileWarning(); w != nil {
			u.Warnf("%v", w)
		}
		if r.GossipKey == "" {
			return "", nil, cmdline.WithHint(fmt.Errorf("--cluster-ref: %s holds no gossip_key (it predates gossip keys)", clusterRef),
				"give the cluster's key with --gossip-key-file FILE, or leave --cluster-ref out to mint a reference for a new cluster with a fresh key")
		}
		return r.GossipKey, r.GossipExtraKeys, nil
	case keyFile != "":
		p, x, err := readGossipKeyFile(keyFile)
		if err != nil {
			return "", nil, cmdline.WithHint(err, "the file holds base64 keys of 16, 24 or 32 bytes, one a line, mode 0600 (create one: head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE)")
		}
		for _, k := range x {
			extra = append(extra, base64.StdEncoding.EncodeToString(k))
		}
		return base64.StdEncoding.EncodeToString(p), extra, nil
	}
	k, err := api.GenerateGossipKey()
	return k, nil, err
}

// nodeGossipKeys sets cfg's gossip keys: from --gossip-key-file, from
// --gossip-key or $VOUCH_GOSSIP_KEY, else from the function reference;
// --insecure-gossip runs without. It returns where the keys came from, for
// the log (never the keys).
func nodeGossipKeys(cfg *node.Config, flagKey, keyFile string, insecure bool, ref *api.Ref) (string, error) {
	env := os.Getenv("VOUCH_GOSSIP_KEY")
	if flagKey != "" && keyFile != "" {
		return "", cmdline.Usagef("give --gossip-key or --gossip-key-file, not both")
	}
	if insecure {
		if flagKey != "" || keyFile != "" {
			return "", cmdline.Usagef("--insecure-gossip runs without a gossip key: leave out --gossip-key and --gossip-key-file")
		}
		if env != "" {
			return "", cmdline.Usagef("--insecure-gossip runs without a gossip key, but VOUCH_GOSSIP_KEY is set: unset it, or leave out --insecure-gossip")
		}
		cfg.InsecureGossip = true
		return "", nil
	}
	var err error
	switch {
	case keyFile != "":
		if cfg.GossipKey, cfg.GossipExtraKeys, err = readGossipKeyFile(keyFile); err != nil {
			return "", cmdline.WithHint(err, "the file holds base64 keys of 16, 24 or 32 bytes, one a line, mode 0600; the first encrypts, the others are accepted during a rotation")
		}
		return "--gossip-key-file " + keyFile, nil
	case flagKey != "" || env != "":
		src, s := "--gossip-key", flagKey
		if s == "" {
			src, s = "VOUCH_GOSSIP_KEY", env
		}
		if cfg.GossipKey, cfg.GossipExtraKeys, err = api.ParseGossipKeyList(s); err != nil {
			return "", cmdline.Usagef("%s: %v (create one: head -c 32 /dev/urandom | base64)", src, err)
		}
		return src, nil
	case ref != nil && ref.GossipKey != "":
		if cfg.GossipKey, cfg.GossipExtraKeys, err = ref.GossipKeys(); err != nil {
			return "", fmt.Errorf("function reference: %w", err)
		}
		return "the function reference", nil
	}
	return "", cmdline.WithHint(errors.New("no gossip key: without one anyone who can send a packet to the gossip port can declare members dead"),
		"mint the node's reference with `vouch token <ID> --function-checksum <SUM> -o json --cluster-ref EXISTING_REF --out FILE` (it carries the cluster's gossip key), or pass --gossip-key-file FILE; --insecure-gossip runs without authentication, for tests only")
}
