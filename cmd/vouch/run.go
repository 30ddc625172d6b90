package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/attest"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/receipt"
)

func runFlags(fs *flag.FlagSet) runFunc {
	var cf clientFlags
	cf.register(fs, true)
	checksum := fs.String("function-checksum", "", "the `HEX` checksum you expect the function to have (required unless --ref gives it)")
	tok := fs.String("token", "", "the function `TOKEN` (default: $VOUCH_TOKEN, else the reference's); vouch token mints one")
	file := fs.String("f", "", "read the input from `FILE` (- for stdin)")
	out := formatFlag(fs, "text prints the output, json the output, receipt, signature and attestation", "text", "json")
	plaintext := fs.Bool("plaintext", false, "send the input unsealed (only for functions whose manifest allows it)")
	sealOutput := fs.Bool("seal-output", false, "have the runtime seal the output back to this client")
	singleShot := fs.Bool("single-shot", false, "seal the input with its own HPKE context instead of a session (docs/FORMATS.md, \"Sessions\")")
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		ref, err := cf.loadRef()
		if err != nil {
			return err
		}
		fr := client.FunctionRef{Checksum: strings.ToLower(*checksum), Token: functionToken(*tok, ref)}
		if ref != nil {
			fr.ID = ref.FunctionID
			if fr.Checksum == "" {
				fr.Checksum = ref.FunctionChecksum
			}
			if len(pos) > 0 && pos[0] == ref.FunctionID {
				pos = pos[1:]
			}
		} else {
			if len(pos) == 0 {
				return cmdline.Usagef("run needs a function ID (or --ref FILE)")
			}
			fr.ID, pos = pos[0], pos[1:]
		}
		if fr.Checksum == "" {
			return cmdline.WithHint(errors.New("no expected checksum"), "pass --function-checksum HEX: the checksum `vouch deploy` printed, or `vouch checksum PATH` of what you built")
		}

		var input []byte
		switch {
		case *file != "" && len(pos) == 0:
			if *file == "-" {
				input, err = io.ReadAll(os.Stdin)
			} else {
				input, err = os.ReadFile(*file)
			}
			if err != nil {
				return err
			}
		case *file == "" && len(pos) == 1:
			input = []byte(pos[0])
		case *file == "" && len(pos) == 0:
			input = nil
		default:
			return cmdline.Usagef("give the input once: as an argument, or with -f FILE (-f - for stdin)")
		}
		opts, err := cf.options(u, ref, false)
		if err != nil {
			return err
		}
		if fr.Token == "" {
			// Never the owner credential: a run sends its token to whatever
			// runtime --enclave names.
			return cmdline.WithHint(errors.New("no function token: running a function needs a token for it"),
				"the runtime's owner mints one with `vouch token %s --function-checksum %s` (-o json --out FILE writes a reference); pass it with --token TOKEN, $VOUCH_TOKEN or --ref FILE", fr.ID, fr.Checksum)
		}
		opts.Plaintext, opts.SealOutput, opts.SingleShot = *plaintext, *sealOutput, *singleShot
		c, err := client.NewReplicas(cf.urls(ref), opts)
		if err != nil {
			return err
		}
		if err := c.CheckCredentialTransport("function token"); err != nil {
			return err
		}
		if _, err := c.Attest(ctx); err != nil {
			return attestHint(err)
		}
		res, err := c.Run(ctx, fr, input)
		if err != nil {
			switch {
			case errors.Is(err, client.ErrChecksumMismatch):
				return cmdline.WithHint(err, "nothing was sent; the function deployed under this ID is not the one you expect")
			case errors.Is(err, client.ErrReceipt):
				return cmdline.WithHint(err, "do not trust this output: the answer was changed on its way, or does not come from the attested runtime")
			}
			return attestHint(runTokenHint(err, fr))
		}
		id := c.Cached() // the identity the run was verified under
		if *out == "json" {
			if err := json.NewEncoder(u.Out).Encode(api.RunRecord{Output: res.Output, Receipt: res.Receipt, Log: res.Log, Attestation: summary(id)}); err != nil {
				return err
			}
		} else {
			u.Out.Write(res.Output)
			if len(res.Output) > 0 && res.Output[len(res.Output)-1] != '\n' {
				fmt.Fprintln(u.Out)
			}
		}
		if res.Log != "" && *out != "json" {
			// stderr, like the function's own: not covered by the receipt.
			u.PrintLog("function log (not covered by the receipt)", res.Log)
		}
		label := ", attestation " + id.Platform
		if id.Simulated {
			label = ", SIMULATED attestation (development only; it proves nothing about the hardware)"
		}
		u.Infof("receipt verified: seq %d, key %s%s", res.Receipt.Seq, res.Receipt.KeyID[:16], label)
		return nil
	}
}

// summary describes a verified identity for JSON output.
func summary(id *client.Identity) *api.AttestationSummary {
	if id == nil {
		return nil
	}
	return &api.AttestationSummary{Platform: id.Platform, Simulated: id.Simulated,
		RootFingerprint: hex.EncodeToString(id.Claims.RootFingerprint[:]), KeyID: id.KeyID}
}

// attestHint adds what to do to an attestation failure.
func attestHint(err error) error {
	switch {
	case errors.Is(err, attest.ErrSimulated):
		return cmdline.WithHint(err, "this runtime's attestation is SIMULATED; pass --allow-simulated --root-fingerprint HEX to accept it for development, or use a reference from `vouch token -o json`")
	case errors.Is(err, client.ErrPinnedKey):
		return cmdline.WithHint(err, "the runtime's receipt key is not the one pinned (trust.key_id, --key-id); if its keys were replaced on purpose, have its owner mint a new reference with `vouch token <ID> --function-checksum <SUM> -o json --out FILE`")
	}
	return err
}

func verifyFlags(fs *flag.FlagSet) runFunc {
	var cf clientFlags
	cf.register(fs, false)
	key := fs.String("key", "", "the runtime's receipt public `KEY` (hex or base64 of 32 bytes)")
	inputFile := fs.String("input", "", "also check that the receipt is for the input in this `FILE`")
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		data, err := os.ReadFile(pos[0])
		if err != nil {
			return err
		}
		r, output, recorded, err := parseReceiptFile(data)
		if err != nil {
			return fmt.Errorf("%s: %w", pos[0], err)
		}
		var pub ed25519.PublicKey
		var id *client.Identity
		switch {
		case *key != "" && cf.enclave != "":
			return cmdline.Usagef("verify needs exactly one of --key PUBKEY and --enclave URL")
		case *key != "":
			if pub, err = parseKey(*key); err != nil {
				return err
			}
		case cf.enclave != "" || strings.TrimSpace(os.Getenv("VOUCH_ENCLAVE")) != "":
			// The runtime: --enclave, else $VOUCH_ENCLAVE.
			opts, err := cf.options(u, nil, false)
			if err != nil {
				return err
			}
			c, err := client.NewReplicas(cf.urls(nil), opts)
			if err != nil {
				return err
			}
			if id, err = c.Attest(ctx); err != nil {
				return attestHint(err)
			}
			pub = id.ReceiptKey
		default:
			return cmdline.Usagef("verify needs exactly one of --key PUBKEY and --enclave URL (or $VOUCH_ENCLAVE)")
		}
		if err := r.Verify(pub); err != nil {
			return err
		}
		if output != nil && receipt.SHA256Hex(output) != r.OutputSHA256 {
			return fmt.Errorf("%w: the output in %s is not the one the receipt covers", receipt.ErrSignature, pos[0])
		}
		if *inputFile != "" {
			in, err := os.ReadFile(*inputFile)
			if err != nil {
				return err
			}
			if receipt.SHA256Hex(in) != r.InputSHA256 {
				return fmt.Errorf("the receipt is not for the input in %s", *inputFile)
			}
		}
		if id != nil && id.Simulated {
			fmt.Fprintln(u.Out, "*** SIMULATED attestation: development only; the key it vouches for proves nothing about the hardware ***")
		}
		fmt.Fprintf(u.Out, "receipt OK\n  function  %s\n  checksum  %s\n  input     sha256:%s\n  output    sha256:%s\n  seq       %d\n  time      %s\n  key       %s\n",
			r.FunctionID, r.FunctionChecksum, r.InputSHA256, r.OutputSHA256, r.Seq, r.Time.Format("2006-01-02T15:04:05.000Z07:00"), r.KeyID)
		switch {
		case id != nil && id.Simulated:
			fmt.Fprintf(u.Out, "  attested  SIMULATED (root %x), verified now\n", id.Claims.RootFingerprint)
		case id != nil:
			fmt.Fprintf(u.Out, "  attested  %s (root %x), verified now\n", id.Platform, id.Claims.RootFingerprint)
		case recorded != nil && recorded.Simulated:
			fmt.Fprintf(u.Out, "  recorded  SIMULATED attestation, as `vouch run` saw it (not evidence; --key is what you trust)\n")
		case recorded != nil:
			fmt.Fprintf(u.Out, "  recorded  %s attestation, as `vouch run` saw it (not evidence; --key is what you trust)\n", recorded.Platform)
		}
		return nil
	}
}

// parseReceiptFile reads a run record ({output, receipt, attestation}, from
// `vouch run -o json`), a run result ({output, receipt}) or a bare receipt.
func parseReceiptFile(data []byte) (*receipt.Receipt, []byte, *api.AttestationSummary, error) {
	var res api.RunRecord
	if api.UnmarshalStrict(data, &res) == nil && res.Receipt.Signature != nil {
		if _, err := res.Receipt.Message(); err != nil {
			return nil, nil, nil, err
		}
		return &res.Receipt, res.Output, res.Attestation, nil
	}
	r, err := receipt.ParseReceipt(data)
	return r, nil, nil, err
}

func parseKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
		return b, nil
	}
	return nil, fmt.Errorf("--key must be a 32-byte Ed25519 public key in hex or base64 (`vouch attest` prints it)")
}
