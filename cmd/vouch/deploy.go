package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/vouch-dev/vouch/bundle"
	"github.com/vouch-dev/vouch/client"
	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/functions"
)

func deployFlags(fs *flag.FlagSet) runFunc {
	var cf clientFlags
	cf.register(fs, false)
	cf.registerOwner(fs)
	builtin := fs.String("builtin", "", "deploy the built-in function `NAME` instead of a PATH (built-in: "+strings.Join(functions.Names(), ", ")+")")
	name := fs.String("name", "", "the function's `NAME` (default: the manifest's name)")
	out := formatFlag(fs, "json prints {\"function_id\", \"function_checksum\", \"function_name\"}", "text", "json")
	maxSize := fs.Int64("max-bundle-size", bundle.DefaultMaxSize, "largest bundle to send, in `BYTES` of its encoding (the runtime's --max-bundle-size must allow it too)")
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		var err error
		if *maxSize <= 0 {
			return cmdline.Usagef("--max-bundle-size %d: want a positive number of bytes", *maxSize)
		}
		var b *bundle.Bundle
		switch {
		case *builtin != "" && len(pos) == 0:
			if b, err = functions.Builtin(*builtin); err != nil {
				return err
			}
		case *builtin == "" && len(pos) == 1:
			if b, err = loadBundle(pos[0], *maxSize); err != nil {
				return err
			}
		default:
			return cmdline.Usagef("deploy takes one PATH (a .wasm file or a bundle folder) or --builtin NAME")
		}
		opts, err := cf.options(u, nil, true)
		if err != nil {
			return err
		}
		c, err := client.NewReplicas(cf.urls(nil), opts)
		if err != nil {
			return err
		}
		d, err := c.Deploy(ctx, b, *name)
		if err != nil {
			return err
		}
		if *out == "json" {
			return json.NewEncoder(u.Out).Encode(d)
		}
		fmt.Fprintf(u.Out, "Function ID ➜ %s\nFunction Checksum ➜ %s\n", d.FunctionID, d.FunctionChecksum)
		if d.FunctionName != "" {
			fmt.Fprintf(u.Out, "Function Name ➜ %s\n", d.FunctionName)
		}
		return nil
	}
}

func listFlags(fs *flag.FlagSet) runFunc {
	var cf clientFlags
	cf.register(fs, false)
	cf.registerOwner(fs)
	out := formatFlag(fs, "json prints the functions as an array", "text", "json")
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		opts, err := cf.options(u, nil, true)
		if err != nil {
			return err
		}
		c, err := client.NewReplicas(cf.urls(nil), opts)
		if err != nil {
			return err
		}
		fns, err := c.List(ctx)
		if err != nil {
			return err
		}
		if *out == "json" {
			return json.NewEncoder(u.Out).Encode(fns)
		}
		tw := tabwriter.NewWriter(u.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCHECKSUM\tCREATED\tSIZE")
		for _, f := range fns {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", f.FunctionID, f.FunctionName, f.FunctionChecksum, f.CreatedAt.Format("2006-01-02 15:04:05"), f.Size)
		}
		return tw.Flush()
	}
}

func deleteFlags(fs *flag.FlagSet) runFunc {
	var cf clientFlags
	cf.register(fs, false)
	cf.registerOwner(fs)
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		opts, err := cf.options(u, nil, true)
		if err != nil {
			return err
		}
		c, err := client.NewReplicas(cf.urls(nil), opts)
		if err != nil {
			return err
		}
		if err := c.Delete(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(u.Out, "Deleted %s\n", pos[0])
		return nil
	}
}

// loadBundle is bundle.LoadWithLimit with the CLI's hints.
func loadBundle(path string, maxSize int64) (*bundle.Bundle, error) {
	b, err := bundle.LoadWithLimit(path, maxSize)
	switch {
	case err == nil:
		return b, nil
	case errors.Is(err, bundle.ErrManifest):
		return nil, cmdline.WithHint(err, "fix vouch.json: every field is optional and unknown fields are refused (docs/FORMATS.md, \"Manifest\")")
	case errors.Is(err, bundle.ErrTooLarge):
		return nil, cmdline.WithHint(err, "raise --max-bundle-size; the runtime refuses bundles over its own --max-bundle-size (default 64 MiB) whatever this flag says")
	case errors.Is(err, fs.ErrNotExist):
		return nil, cmdline.WithHint(err, "PATH is a .wasm file or a folder holding one .wasm file and an optional vouch.json")
	}
	return nil, err
}

func checksumFlags(fs *flag.FlagSet) runFunc {
	builtin := fs.String("builtin", "", "print the checksum of the built-in function `NAME` (built-in: "+strings.Join(functions.Names(), ", ")+")")
	manifest := fs.String("manifest", "", "with a .wasm file PATH: the vouch.json `FILE` to bundle with it, as if both sat alone in a folder")
	maxSize := fs.Int64("max-bundle-size", bundle.DefaultMaxSize, "largest bundle to read, in `BYTES` of its encoding")
	return func(ctx context.Context, u *cmdline.UI, pos []string) error {
		var err error
		var b *bundle.Bundle
		switch {
		case *builtin != "" && len(pos) == 0 && *manifest == "":
			b, err = functions.Builtin(*builtin)
		case *builtin == "" && len(pos) == 1 && *manifest != "":
			b, err = bundleWithManifest(pos[0], *manifest, *maxSize)
		case *builtin == "" && len(pos) == 1:
			b, err = loadBundle(pos[0], *maxSize)
		default:
			return cmdline.Usagef("checksum takes one PATH (a .wasm file or a bundle folder), a .wasm file with --manifest FILE, or --builtin NAME")
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(u.Out, b.Checksum())
		return nil
	}
}

// bundleWithManifest loads a .wasm file and a vouch.json from anywhere, as
// bundle.Load would from a folder that holds just the two: this is how to
// check a built-in's checksum against its source folder, which holds Go
// files too.
func bundleWithManifest(module, manifest string, maxSize int64) (*bundle.Bundle, error) {
	if fi, err := os.Stat(module); err == nil && fi.IsDir() {
		return nil, cmdline.Usagef("--manifest goes with a .wasm file, not with a folder (%s)", module)
	}
	mb, err := loadBundle(module, maxSize)
	if err != nil {
		return nil, err
	}
	man, err := os.ReadFile(manifest)
	if err != nil {
		return nil, err
	}
	b, err := bundle.New(mb.Module, man)
	if err != nil {
		return nil, cmdline.WithHint(fmt.Errorf("%s: %w", manifest, err), "fix vouch.json: every field is optional and unknown fields are refused (docs/FORMATS.md, \"Manifest\")")
	}
	if n := int64(len(b.Encode())); n > maxSize {
		return nil, cmdline.WithHint(fmt.Errorf("%w: %w: the bundle encodes to %d bytes, more than the %d-byte bundle limit", bundle.ErrInvalid, bundle.ErrTooLarge, n, maxSize), "raise --max-bundle-size")
	}
	return b, nil
}
