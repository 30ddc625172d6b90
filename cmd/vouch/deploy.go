package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"vouch/bundle"
	"vouch/client"
	"vouch/functions"
)

func cmdDeploy(ctx context.Context, args []string, u *ui) error {
	fs := newFlags("deploy", "PATH | --builtin NAME [flags]", u)
	var cf clientFlags
	cf.register(fs, false)
	cf.registerOwner(fs)
	builtin := fs.String("builtin", "", "deploy a built-in function instead of a PATH (built-in: leader)")
	name := fs.String("name", "", "function name (default: the manifest's name)")
	out := fs.String("o", "text", "output format: text or json")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	var b *bundle.Bundle
	switch {
	case *builtin != "" && len(pos) == 0:
		if b, err = functions.Builtin(*builtin); err != nil {
			return err
		}
	case *builtin == "" && len(pos) == 1:
		if b, err = bundle.Load(pos[0]); err != nil {
			return err
		}
	default:
		return usagef("deploy takes one PATH (a .wasm file or a bundle folder) or --builtin NAME")
	}
	opts, err := cf.options(nil, true)
	if err != nil {
		return err
	}
	c, err := client.New(cf.url(nil), opts)
	if err != nil {
		return err
	}
	d, err := c.Deploy(ctx, b, *name)
	if err != nil {
		return err
	}
	if *out == "json" {
		return json.NewEncoder(u.out).Encode(d)
	}
	fmt.Fprintf(u.out, "Function ID ➜ %s\nFunction Checksum ➜ %s\n", d.FunctionID, d.FunctionChecksum)
	if d.FunctionName != "" {
		fmt.Fprintf(u.out, "Function Name ➜ %s\n", d.FunctionName)
	}
	return nil
}

func cmdList(ctx context.Context, args []string, u *ui) error {
	fs := newFlags("list", "[flags]", u)
	var cf clientFlags
	cf.register(fs, false)
	cf.registerOwner(fs)
	out := fs.String("o", "text", "output format: text or json")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs("list", pos); err != nil {
		return err
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	opts, err := cf.options(nil, true)
	if err != nil {
		return err
	}
	c, err := client.New(cf.url(nil), opts)
	if err != nil {
		return err
	}
	fns, err := c.List(ctx)
	if err != nil {
		return err
	}
	if *out == "json" {
		return json.NewEncoder(u.out).Encode(fns)
	}
	tw := tabwriter.NewWriter(u.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tCHECKSUM\tCREATED\tSIZE")
	for _, f := range fns {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", f.FunctionID, f.FunctionName, f.FunctionChecksum, f.CreatedAt.Format("2006-01-02 15:04:05"), f.Size)
	}
	return tw.Flush()
}

func cmdDelete(ctx context.Context, args []string, u *ui) error {
	fs := newFlags("delete", "ID [flags]", u)
	var cf clientFlags
	cf.register(fs, false)
	cf.registerOwner(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("delete takes one function ID")
	}
	opts, err := cf.options(nil, true)
	if err != nil {
		return err
	}
	c, err := client.New(cf.url(nil), opts)
	if err != nil {
		return err
	}
	if err := c.Delete(ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(u.out, "Deleted %s\n", pos[0])
	return nil
}

func cmdChecksum(ctx context.Context, args []string, u *ui) error {
	fs := newFlags("checksum", "PATH | --builtin NAME", u)
	builtin := fs.String("builtin", "", "print the checksum of a built-in function")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var b *bundle.Bundle
	switch {
	case *builtin != "" && len(pos) == 0:
		b, err = functions.Builtin(*builtin)
	case *builtin == "" && len(pos) == 1:
		b, err = bundle.Load(pos[0])
	default:
		return usagef("checksum takes one PATH (a .wasm file or a bundle folder) or --builtin NAME")
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(u.out, b.Checksum())
	return nil
}
