package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"

	"vouch/cluster"
	"vouch/internal/secretfile"
	"vouch/internal/strictjson"
	"vouch/node"
)

const clusterUsage = `<subcommand> [flags]

Subcommands:
  init        create an owner key (if missing) and a signed configuration
  add-member  add a member (ID, public key, optional stake) and re-sign
  remove-member  remove a member and re-sign
  set         change the policy, lease, view TTL or open mode and re-sign
  show        print a configuration and check its signature`

func cmdCluster(ctx context.Context, args []string, u *ui) error {
	if len(args) == 0 {
		return usagef("cluster needs a subcommand: init, add-member, remove-member, set or show")
	}
	switch args[0] {
	case "init":
		return clusterInit(args[1:], u)
	case "add-member":
		return clusterEdit("add-member", args[1:], u)
	case "remove-member":
		return clusterEdit("remove-member", args[1:], u)
	case "set":
		return clusterEdit("set", args[1:], u)
	case "show":
		return clusterShow(args[1:], u)
	case "-h", "--help", "help":
		fmt.Fprintf(u.err, "Usage: vouch cluster %s\n", clusterUsage)
		return nil
	}
	return usagef("unknown cluster subcommand %q: want init, add-member, remove-member, set or show", args[0])
}

func clusterInit(args []string, u *ui) error {
	fs := newFlags("cluster init", "--name NAME [--policy highest|lowest|fair|stake] [--open] [flags]", u)
	name := fs.String("name", "", "cluster name (required)")
	policy := fs.String("policy", cluster.PolicyHighest, "election policy: highest, lowest, fair or stake")
	open := fs.Bool("open", false, "OPEN mode: members register on first contact (trust on first use), for demos")
	lease := fs.Duration("lease", cluster.DefaultLease, "how long a leader may act after the runtime last confirmed it")
	ttl := fs.Duration("view-ttl", cluster.DefaultViewTTL, "how long a member's view counts as fresh")
	ownerKey := fs.String("owner-key", "cluster-owner.pem", "the owner's Ed25519 key (created, mode 0600, if missing)")
	out := fs.String("o", "cluster.json", "where to write the signed configuration")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return usagef("cluster init needs --name")
	}
	owner, created, err := loadOwnerKey(*ownerKey)
	if err != nil {
		return err
	}
	if created {
		u.infof("created the owner key %s (mode 0600); keep it safe: it is the only key that can change the cluster", *ownerKey)
	}
	c := cluster.Config{Cluster: *name, Version: 1, Owner: owner.Public().(ed25519.PublicKey), Policy: *policy, Open: *open,
		LeaseMillis: lease.Milliseconds(), ViewTTLMillis: ttl.Milliseconds()}
	if !*open {
		u.infof("a closed cluster needs members: add them with `vouch cluster add-member --id ID --key KEY` (a node prints its key with `vouch node id --data DIR`)")
		// A closed cluster without members does not verify; write it once
		// members are added.
		return writeSigned(*out, c, owner, u, true)
	}
	u.warnf("OPEN mode: any node that reaches the runtime registers itself on first contact (trust on first use); for demos")
	return writeSigned(*out, c, owner, u, false)
}

func clusterEdit(sub string, args []string, u *ui) error {
	fs := newFlags("cluster "+sub, "[--config cluster.json] [--owner-key KEY] [flags]", u)
	file := fs.String("config", "cluster.json", "the signed configuration to change")
	ownerKey := fs.String("owner-key", "cluster-owner.pem", "the owner's Ed25519 key (it must exist: only `cluster init` creates one)")
	id := fs.String("id", "", "member ID (add-member, remove-member)")
	keyFlag := fs.String("key", "", "member's Ed25519 public key, base64 (add-member)")
	nodeData := fs.String("node-data", "", "read the member's key from this node data directory instead of --key (add-member; the node must have started once)")
	stake := fs.Uint64("stake", 0, "member's stake under the stake policy (add-member; 0 means 1)")
	policy := fs.String("policy", "", "new policy (set)")
	lease := fs.Duration("lease", 0, "new lease (set)")
	ttl := fs.Duration("view-ttl", 0, "new view TTL (set)")
	open := fs.String("open", "", "true or false (set)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	c, err := readConfig(*file)
	if err != nil {
		return err
	}
	owner, err := readOwnerKey(*ownerKey)
	if err != nil {
		return err
	}
	switch sub {
	case "add-member":
		if *id == "" {
			return usagef("add-member needs --id")
		}
		var pub ed25519.PublicKey
		switch {
		case *nodeData != "":
			k, err := readNodeIdentity(*nodeData)
			if err != nil {
				return err
			}
			pub = k.Public().(ed25519.PublicKey)
		case *keyFlag != "":
			b, err := base64.StdEncoding.DecodeString(*keyFlag)
			if err != nil || len(b) != ed25519.PublicKeySize {
				return usagef("--key must be base64 of a 32-byte Ed25519 public key (`vouch node id` prints it)")
			}
			pub = b
		default:
			return usagef("add-member needs --key KEY or --node-data DIR")
		}
		if c.Member(*id) != nil {
			return fmt.Errorf("member %q is already in the configuration", *id)
		}
		c.Members = append(c.Members, cluster.Member{ID: *id, Key: pub, Stake: *stake})
	case "remove-member":
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
	case "set":
		if *policy != "" {
			c.Policy = *policy
		}
		if *lease != 0 {
			c.LeaseMillis = lease.Milliseconds()
		}
		if *ttl != 0 {
			c.ViewTTLMillis = ttl.Milliseconds()
		}
		switch *open {
		case "true":
			if !c.Open {
				u.warnf("OPEN mode: any node that reaches the runtime registers itself on first contact (trust on first use); for demos")
			}
			c.Open = true
		case "false":
			c.Open = false
		case "":
		default:
			return usagef("--open takes true or false")
		}
	}
	c.Version++
	return writeSigned(*file, *c, owner, u, false)
}

func clusterShow(args []string, u *ui) error {
	fs := newFlags("cluster show", "[--config cluster.json] [-o json]", u)
	file := fs.String("config", "cluster.json", "the signed configuration")
	out := fs.String("o", "text", "output format: text or json")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	s, err := cluster.ParseSigned(data)
	if err != nil {
		return err
	}
	if *out == "json" {
		return json.NewEncoder(u.out).Encode(s)
	}
	c := &s.Config
	mode := "closed"
	if c.Open {
		mode = "OPEN (trust on first use; for demos)"
	}
	fmt.Fprintf(u.out, "cluster %s, version %d, signature OK\n  digest   %s\n  owner    %s\n  policy   %s\n  mode     %s\n  lease    %s\n  view ttl %s\n",
		c.Cluster, c.Version, c.Digest(), base64.StdEncoding.EncodeToString(c.Owner), c.Policy, mode, c.Lease(), c.ViewTTL())
	tw := tabwriter.NewWriter(u.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tKEY\tSTAKE")
	for _, m := range c.Members {
		fmt.Fprintf(tw, "  %s\t%s\t%d\n", m.ID, base64.StdEncoding.EncodeToString(m.Key), max(m.Stake, 1))
	}
	return tw.Flush()
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

func writeSigned(path string, c cluster.Config, owner ed25519.PrivateKey, u *ui, draft bool) error {
	var v any
	if draft && len(c.Members) == 0 {
		v = cluster.Signed{Config: c} // unsigned until it has members
	} else {
		s, err := cluster.Sign(c, owner)
		if err != nil {
			return err
		}
		v = s
		u.infof("wrote %s: cluster %s version %d, digest %s", path, c.Cluster, c.Version, s.Config.Digest())
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
		return nil, withHint(fmt.Errorf("owner key %s does not exist", path),
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
		return nil, withHint(fmt.Errorf("no node identity in %s (%s does not exist)", dir, path),
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

func cmdNodeID(args []string, u *ui) error {
	fs := newFlags("node id", "--data DIR", u)
	data := fs.String("data", "", "the node's data directory (the key is created there if missing)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *data == "" {
		return usagef("node id needs --data DIR")
	}
	k, created, err := node.LoadIdentity(*data)
	if err != nil {
		return err
	}
	if created {
		u.infof("created a new identity key in %s", filepath.Join(*data, node.IdentityFile))
	}
	fmt.Fprintln(u.out, base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey)))
	return nil
}
