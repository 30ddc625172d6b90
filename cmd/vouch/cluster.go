package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/vouch-dev/vouch/cluster"
	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/internal/secretfile"
	"github.com/vouch-dev/vouch/internal/strictjson"
	"github.com/vouch-dev/vouch/node"
)

func clusterInitFlags(fs *flag.FlagSet) runFunc {
	name := fs.String("name", "", "cluster `NAME` (required)")
	policy := fs.String("policy", cluster.PolicyHighest, "election `POLICY`: highest, lowest, fair or stake")
	open := fs.Bool("open", false, "OPEN mode: members register on first contact (trust on first use), for demos")
	lease := fs.Duration("lease", cluster.DefaultLease, "the `DURATION` a leader may act for after the runtime last confirmed it")
	ttl := fs.Duration("view-ttl", cluster.DefaultViewTTL, "the `DURATION` a member's view counts as fresh")
	ownerKey := ownerKeyFlag(fs, "the owner's Ed25519 key, a PEM `FILE` (created, mode 0600, if missing)")
	out := fs.String("o", "cluster.json", "the `FILE` to write the signed configuration to")
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		if *name == "" {
			return cmdline.Usagef("cluster init needs --name")
		}
		owner, created, err := loadOwnerKey(*ownerKey)
		if err != nil {
			return err
		}
		if created {
			u.Infof("created the owner key %s (mode 0600); keep it safe: it is the only key that can change the cluster", *ownerKey)
		}
		c := cluster.Config{Cluster: *name, Version: 1, Owner: owner.Public().(ed25519.PublicKey), Policy: *policy, Open: *open,
			LeaseMillis: lease.Milliseconds(), ViewTTLMillis: ttl.Milliseconds()}
		if !*open {
			u.Infof("a closed cluster needs members: add them with `vouch cluster add-member --id ID --key KEY` (a node prints its key with `vouch node id --data DIR`)")
			// A closed cluster without members does not verify; write it once
			// members are added.
			return writeSigned(*out, c, owner, u, true)
		}
		u.Warnf("OPEN mode: any node that reaches the runtime registers itself on first contact (trust on first use); for demos")
		return writeSigned(*out, c, owner, u, false)
	}
}

// ownerKeyFlag registers --owner-key.
func ownerKeyFlag(fs *flag.FlagSet, usage string) *string {
	return fs.String("owner-key", "cluster-owner.pem", usage)
}

// editFlags registers the flags every edit of a configuration takes: the
// file and the owner's key.
func editFlags(fs *flag.FlagSet) (file, ownerKey *string) {
	file = fs.String("config", "cluster.json", "the signed configuration `FILE` to change")
	ownerKey = ownerKeyFlag(fs, "the owner's Ed25519 key, a PEM `FILE` (it must exist: only cluster init creates one)")
	return file, ownerKey
}

// edit reads a configuration and the owner's key, applies change and
// writes the configuration back, one version up and signed again.
func edit(file, ownerKey string, u *cmdline.UI, change func(c *cluster.Config) error) error {
	c, err := readConfig(file)
	if err != nil {
		return err
	}
	owner, err := readOwnerKey(ownerKey)
	if err != nil {
		return err
	}
	if err := change(c); err != nil {
		return err
	}
	c.Version++
	return writeSigned(file, *c, owner, u, false)
}

func clusterAddMemberFlags(fs *flag.FlagSet) runFunc {
	file, ownerKey := editFlags(fs)
	id := fs.String("id", "", "the member's `ID` (required)")
	keyFlag := fs.String("key", "", "the member's Ed25519 public `KEY`, base64 (vouch node id prints it)")
	nodeData := fs.String("node-data", "", "read the member's key from this node data `DIR` instead of --key (the node must have started once)")
	stake := fs.Uint64("stake", 0, "the member's stake, a whole number `N`, under the stake policy (0 means 1)")
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		if *id == "" {
			return cmdline.Usagef("add-member needs --id")
		}
		if *nodeData == "" && *keyFlag == "" {
			return cmdline.Usagef("add-member needs --key KEY or --node-data DIR")
		}
		return edit(*file, *ownerKey, u, func(c *cluster.Config) error {
			var pub ed25519.PublicKey
			if *nodeData != "" {
				k, err := readNodeIdentity(*nodeData)
				if err != nil {
					return err
				}
				pub = k.Public().(ed25519.PublicKey)
			} else {
				b, err := base64.StdEncoding.DecodeString(*keyFlag)
				if err != nil || len(b) != ed25519.PublicKeySize {
					return cmdline.Usagef("--key must be base64 of a 32-byte Ed25519 public key (`vouch node id` prints it)")
				}
				pub = b
			}
			if c.Member(*id) != nil {
				return fmt.Errorf("member %q is already in the configuration", *id)
			}
			c.Members = append(c.Members, cluster.Member{ID: *id, Key: pub, Stake: *stake})
			return nil
		})
	}
}

func clusterRemoveMemberFlags(fs *flag.FlagSet) runFunc {
	file, ownerKey := editFlags(fs)
	id := fs.String("id", "", "the member's `ID` (required)")
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		if *id == "" {
			return cmdline.Usagef("remove-member needs --id")
		}
		return edit(*file, *ownerKey, u, func(c *cluster.Config) error {
			kept := c.Members[:0]
			for _, m := range c.Members {
				if m.ID != *id {
					kept = append(kept, m)
				}
			}
			if len(kept) == len(c.Members) {
				return fmt.Errorf("member %q is not in the configuration", *id)
			}
			c.Members = kept
			return nil
		})
	}
}

func clusterSetFlags(fs *flag.FlagSet) runFunc {
	file, ownerKey := editFlags(fs)
	policy := fs.String("policy", "", "the new election `POLICY`: highest, lowest, fair or stake")
	lease := fs.Duration("lease", 0, "the new lease: how long (a `DURATION`) a leader may act for after the runtime last confirmed it")
	ttl := fs.Duration("view-ttl", 0, "the new view TTL: how long (a `DURATION`) a member's view counts as fresh")
	open := fs.String("open", "", "OPEN mode on or off: `true|false`")
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		if *policy == "" && *lease == 0 && *ttl == 0 && *open == "" {
			return cmdline.Usagef("cluster set has nothing to do: give --policy, --lease, --view-ttl or --open")
		}
		if *open != "" && *open != "true" && *open != "false" {
			return cmdline.Usagef("--open takes true or false")
		}
		return edit(*file, *ownerKey, u, func(c *cluster.Config) error {
			before := *c
			if *policy != "" {
				c.Policy = *policy
			}
			if *lease != 0 {
				c.LeaseMillis = lease.Milliseconds()
			}
			if *ttl != 0 {
				c.ViewTTLMillis = ttl.Milliseconds()
			}
			if *open != "" {
				c.Open = *open == "true"
			}
			if c.Policy == before.Policy && c.LeaseMillis == before.LeaseMillis && c.ViewTTLMillis == before.ViewTTLMillis && c.Open == before.Open {
				return cmdline.WithHint(fmt.Errorf("nothing to change: %s already has these settings (version %d)", *file, c.Version),
					"`vouch cluster show --config %s` prints them", *file)
			}
			if c.Open && !before.Open {
				u.Warnf("OPEN mode: any node that reaches the runtime registers itself on first contact (trust on first use); for demos")
			}
			return nil
		})
	}
}

func clusterShowFlags(fs *flag.FlagSet) runFunc {
	file := fs.String("config", "cluster.json", "the signed configuration `FILE`")
	out := formatFlag(fs, "text describes the configuration, json prints the signed document", "text", "json")
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		data, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		s, err := cluster.ParseSigned(data)
		if err != nil {
			return err
		}
		if *out == "json" {
			return json.NewEncoder(u.Out).Encode(s)
		}
		c := &s.Config
		mode := "closed"
		if c.Open {
			mode = "OPEN (trust on first use; for demos)"
		}
		fmt.Fprintf(u.Out, "cluster %s, version %d, signature OK\n  digest   %s\n  owner    %s\n  policy   %s\n  mode     %s\n  lease    %s\n  view ttl %s\n",
			c.Cluster, c.Version, c.Digest(), base64.StdEncoding.EncodeToString(c.Owner), c.Policy, mode, c.Lease(), c.ViewTTL())
		tw := tabwriter.NewWriter(u.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tKEY\tSTAKE")
		for _, m := range c.Members {
			fmt.Fprintf(tw, "  %s\t%s\t%d\n", m.ID, base64.StdEncoding.EncodeToString(m.Key), max(m.Stake, 1))
		}
		return tw.Flush()
	}
}

// readConfig reads a configuration file; an unsigned draft (a closed
// cluster written before it had members) is accepted too.
func readConfig(path string) (*cluster.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s cluster.Signed
	if err := strictjson.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(s.Signature) > 0 {
		if err := s.Verify(); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return &s.Config, nil
}

func writeSigned(path string, c cluster.Config, owner ed25519.PrivateKey, u *cmdline.UI, draft bool) error {
	var v any
	if draft && len(c.Members) == 0 {
		v = cluster.Signed{Config: c} // unsigned until it has members
	} else {
		s, err := cluster.Sign(c, owner)
		if err != nil {
			return err
		}
		v = s
		u.Infof("wrote %s: cluster %s version %d, digest %s", path, c.Cluster, c.Version, s.Config.Digest())
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// loadOwnerKey reads the owner's key, creating it if missing: only
// `cluster init` does that.
func loadOwnerKey(path string) (ed25519.PrivateKey, bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	return node.LoadOrCreateKey(path)
}

// readOwnerKey reads the owner's existing key. A missing file is an error:
// a new key could not sign for the cluster, and a mistyped path must not
// leave a key behind.
func readOwnerKey(path string) (ed25519.PrivateKey, error) {
	k, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, cmdline.WithHint(fmt.Errorf("owner key %s does not exist", path),
			"pass --owner-key with the key `vouch cluster init` created (default cluster-owner.pem); only `cluster init` creates an owner key")
	}
	return k, err
}

// readNodeIdentity reads a node's existing identity key from its data
// directory, without creating one.
func readNodeIdentity(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, node.IdentityFile)
	k, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, cmdline.WithHint(fmt.Errorf("no node identity in %s (%s does not exist)", dir, path),
			"pass the --data directory of a node that has started once, or create its key with `vouch node id --data DIR`")
	}
	return k, err
}

func readKeyFile(path string) (ed25519.PrivateKey, error) {
	raw, err := secretfile.Read(path, 4<<10)
	if err != nil {
		return nil, err
	}
	k, err := secretfile.ParseEd25519PEM(raw)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	return k, nil
}

func nodeIDFlags(fs *flag.FlagSet) runFunc {
	data := fs.String("data", "", "the node's data `DIR` (the key is created there if missing)")
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		if *data == "" {
			return cmdline.Usagef("node id needs --data DIR")
		}
		k, created, err := node.LoadIdentity(*data)
		if err != nil {
			return err
		}
		if created {
			u.Infof("created a new identity key in %s", filepath.Join(*data, node.IdentityFile))
		}
		fmt.Fprintln(u.Out, base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey)))
		return nil
	}
}
