package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
)

func tokenFlags(fs *flag.FlagSet) runFunc {
	var cf clientFlags
	cf.register(fs, false)
	cf.registerOwner(fs)
	checksum := fs.String("function-checksum", "", "the `HEX` checksum you expect the function to have (required)")
	expiry := fs.Duration("expiry", 24*time.Hour, "how long the token is valid: a `DURATION` from 1s to 8760h")
	out := formatFlag(fs, "text prints the token, json a function reference: ID, checksum, token, runtime URL, trust and gossip key", "text", "json")
	outFile := fs.String("out", "", "write the reference (-o json) to `FILE`, mode 0600, instead of stdout; it holds a bearer token")
	force := fs.Bool("force", false, "with --out, replace FILE if it exists")
	clusterRef := fs.String("cluster-ref", "", "with -o json: a reference `FILE` of an existing cluster; the new one carries its gossip key(s) (default: a fresh gossip key, for a new cluster)")
	gossipKeyFile := fs.String("gossip-key-file", "", "with -o json: the cluster's gossip keys for the new reference, from `FILE` (mode 0600): base64, one a line, the first encrypts")
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		if *outFile != "" {
			if flagSet(fs, "o") && *out != "json" {
				return cmdline.Usagef("--out writes a function reference, which is JSON: use it with -o json (or leave -o out)")
			}
			*out = "json"
		} else if *force {
			return cmdline.Usagef("--force only applies to --out FILE")
		}
		if *out != "json" && (*clusterRef != "" || *gossipKeyFile != "") {
			return cmdline.Usagef("--cluster-ref and --gossip-key-file set a reference's gossip key: use them with -o json")
		}
		if *checksum == "" {
			return cmdline.WithHint(errors.New("no expected checksum"), "pass --function-checksum HEX: a token is minted only for the checksum you expect")
		}
		if *outFile != "" && !*force {
			// Refuse before minting, so that no token is left unused.
			if _, err := os.Lstat(*outFile); err == nil {
				return cmdline.WithHint(fmt.Errorf("%s already exists", *outFile), "pass --force to replace it, or choose another --out FILE")
			}
		}
		opts, err := cf.options(u, nil, true)
		if err != nil {
			return err
		}
		c, err := client.NewReplicas(cf.urls(nil), opts)
		if err != nil {
			return err
		}
		var trust api.Trust
		var gossipKey string
		var gossipExtra []string
		if *out == "json" {
			if gossipKey, gossipExtra, err = tokenGossipKeys(*clusterRef, *gossipKeyFile, u); err != nil {
				return err
			}
			// Attest first: a runtime that fails attestation gets no token.
			if trust, err = observedTrust(ctx, c.URLs(), opts, u); err != nil {
				return err
			}
		}
		resp, err := c.MintToken(ctx, pos[0], strings.ToLower(*checksum), *expiry)
		if err != nil {
			return err
		}
		if *out != "json" {
			warnIfStdoutExposed(u, "chmod 600 it, or write a reference with -o json --out FILE (mode 0600)")
			fmt.Fprintln(u.Out, resp.FunctionToken)
			return nil
		}
		ref := api.Ref{FunctionID: resp.FunctionID, FunctionChecksum: resp.FunctionChecksum, FunctionToken: resp.FunctionToken, Trust: trust,
			GossipKey: gossipKey, GossipExtraKeys: gossipExtra}
		ref.EnclaveURL, ref.EnclaveURLs = refURLs(ctx, c, u)
		if *clusterRef == "" && *gossipKeyFile == "" {
			u.Infof("the reference carries a fresh gossip key, for a new cluster: mint the references of its other members with --cluster-ref FILE (this one)")
		}
		if *outFile != "" {
			if err := api.WriteRefFile(*outFile, &ref, *force); err != nil {
				if errors.Is(err, iofs.ErrExist) {
					return cmdline.WithHint(err, "pass --force to replace it, or choose another --out FILE")
				}
				return err
			}
			u.Infof("wrote the function reference to %s (mode 0600; it holds a bearer token, keep it private)", *outFile)
			return nil
		}
		warnIfStdoutExposed(u, "chmod 600 it, or write the reference with --out FILE (mode 0600)")
		enc := json.NewEncoder(u.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(ref)
	}
}

// refURLs returns what a reference to the runtime behind c lists: the
// replicas the runtime reports (GET /v1/replicas), the leader first, else
// the URLs the user gave; a single URL goes in enclave_url alone.
func refURLs(ctx context.Context, c *client.Client, u *cmdline.UI) (string, []string) {
	urls, err := c.ReplicaURLs(ctx)
	if err != nil {
		u.Warnf("could not list the runtime's replicas (%v); the reference lists the URLs given", err)
	}
	if len(urls) == 0 {
		urls = c.URLs()
	}
	if len(urls) > api.MaxReplicas {
		urls = urls[:api.MaxReplicas]
	}
	if len(urls) == 1 {
		return urls[0], nil
	}
	return urls[0], urls
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// warnIfStdoutExposed warns when stdout is a file that group or others can
// read, as `> ref.json` or `> token` makes one under the usual umask: what
// is written holds a bearer token. fix says what to do instead.
func warnIfStdoutExposed(u *cmdline.UI, fix string) {
	f, ok := u.Out.(*os.File)
	if !ok {
		return
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 == 0 || runtime.GOOS == "windows" {
		return
	}
	u.Warnf("stdout is a file with mode %04o: group or others can read the function token in it; %s", fi.Mode().Perm(), fix)
}

// observedTrust attests the runtime and describes what clients should
// accept from it: its platform, attestation root, PCRs and receipt key as
// seen now (trust on first use, by the owner).
func observedTrust(ctx context.Context, urls []string, opts client.Options, u *cmdline.UI) (api.Trust, error) {
	// The owner is asking about their own runtime: accept what it is, and
	// write that down explicitly in the reference, pinned to its root and
	// receipt key so that it accepts nothing else.
	opts.AllowSimulated = true
	c, err := client.NewReplicas(urls, opts)
	if err != nil {
		return api.Trust{}, err
	}
	id, err := c.Attest(ctx)
	if err != nil {
		return api.Trust{}, attestHint(err)
	}
	root := hex.EncodeToString(id.Claims.RootFingerprint[:])
	t := api.Trust{Platform: id.Platform, RootFingerprint: root, KeyID: id.KeyID, PCRs: map[string][]string{}}
	for i, v := range id.Claims.PCRs {
		if i <= 2 {
			t.PCRs[strconv.Itoa(i)] = []string{hex.EncodeToString(v)}
		}
	}
	if id.Simulated {
		t.AllowSimulated = true
		u.Warnf("*** the runtime's attestation is SIMULATED: development only; it proves nothing about the hardware ***")
		u.Warnf("this reference allows SIMULATED attestation, pinned to root %s and receipt key %s: clients accept that one simulated runtime and no other, but anyone who can read its data directory can sign as it", root, id.KeyID)
	}
	return t, nil
}

func tokenRevokeFlags(fs *flag.FlagSet) runFunc {
	var cf clientFlags
	cf.register(fs, true)
	cf.registerOwner(fs)
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		ref, err := cf.loadRef()
		if err != nil {
			return err
		}
		var tok string
		switch {
		case len(pos) == 1 && ref == nil:
			tok = pos[0]
		case len(pos) == 0 && ref != nil:
			tok = ref.FunctionToken
		default:
			return cmdline.Usagef("token revoke takes one TOKEN or --ref FILE")
		}
		opts, err := cf.options(u, ref, true)
		if err != nil {
			return err
		}
		c, err := client.NewReplicas(cf.urls(ref), opts)
		if err != nil {
			return err
		}
		if err := c.Revoke(ctx, tok); err != nil {
			return err
		}
		fmt.Fprintln(u.Out, "Token revoked")
		return nil
	}
}

func attestFlags(fs *flag.FlagSet) runFunc {
	var cf clientFlags
	cf.register(fs, true)
	out := formatFlag(fs, "json prints the identity as one object", "text", "json")
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		ref, err := cf.loadRef()
		if err != nil {
			return err
		}
		opts, err := cf.options(u, ref, false)
		if err != nil {
			return err
		}
		c, err := client.NewReplicas(cf.urls(ref), opts)
		if err != nil {
			return err
		}
		id, err := c.Attest(ctx)
		if err != nil {
			if errors.Is(err, attest.ErrSimulated) {
				return cmdline.WithHint(err, "pass --allow-simulated to accept a development runtime (and --root-fingerprint HEX to pin it)")
			}
			return attestHint(err)
		}
		cl := id.Claims
		pcrs := map[string]string{}
		var idx []int
		for i, v := range cl.PCRs {
			pcrs[strconv.Itoa(i)] = hex.EncodeToString(v)
			idx = append(idx, i)
		}
		sort.Ints(idx)
		if *out == "json" {
			return json.NewEncoder(u.Out).Encode(map[string]any{
				"platform": id.Platform, "simulated": id.Simulated, "debug": cl.Debug, "module_id": cl.ModuleID,
				"timestamp": cl.Timestamp, "pcrs": pcrs, "receipt_key": hex.EncodeToString(id.ReceiptKey),
				"key_id": id.KeyID, "hpke_key": hex.EncodeToString(id.HPKEKey),
				"root_fingerprint": hex.EncodeToString(cl.RootFingerprint[:]), "version": id.Version,
				"boot_id": hex.EncodeToString(id.BootID), "digest": cl.Digest, "replica_id": id.ReplicaID, "url": c.Replica(),
				"tls_key_sha256": hex.EncodeToString(id.TLSKeySHA256),
			})
		}
		if id.Simulated {
			fmt.Fprintln(u.Out, "*** SIMULATED attestation: development only; it proves nothing about the hardware ***")
		}
		fmt.Fprintf(u.Out, "attestation verified\n  platform          %s\n  module            %s\n  timestamp         %s\n  root fingerprint  %x\n  receipt key       %x\n  key id            %s\n  hpke key          %x\n  pcr digest        %s\n",
			id.Platform, cl.ModuleID, cl.Timestamp.Format(time.RFC3339), cl.RootFingerprint, []byte(id.ReceiptKey), id.KeyID, id.HPKEKey, cl.Digest)
		for _, i := range idx {
			if i <= 2 || strings.Trim(pcrs[strconv.Itoa(i)], "0") != "" {
				fmt.Fprintf(u.Out, "  pcr%-2d             %s\n", i, pcrs[strconv.Itoa(i)])
			}
		}
		if id.TLSKeySHA256 != nil {
			fmt.Fprintf(u.Out, "  tls key sha256    %x\n", id.TLSKeySHA256)
		}
		fmt.Fprintf(u.Out, "not attested (as the runtime reports them)\n  version           %s\n  boot id           %x\n", id.Version, id.BootID)
		if id.ReplicaID != "" {
			fmt.Fprintf(u.Out, "replica (attested)\n  id                %s\n  url               %s\n", id.ReplicaID, c.Replica())
		}
		return nil
	}
}
