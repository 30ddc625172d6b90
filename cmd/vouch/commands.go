package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"syscall"

	"github.com/vouch-dev/vouch/cmd/internal/cmdline"
	"github.com/vouch-dev/vouch/internal/version"
)

// A command is one entry of the command table: a command or a subcommand.
// Every command has its own flag set, so a subcommand's help lists only
// its own flags.
type command struct {
	name    string
	summary string // one line, for the lists of commands
	// synopsis follows "vouch NAME" in the usage line; more lines (other
	// forms) start with "vouch".
	synopsis string
	// flags registers the command's flags on a fresh flag set and returns
	// the function that runs the command once they are parsed, with the
	// positional arguments. Nil for a command that only groups
	// subcommands.
	flags func(fs *flag.FlagSet) runFunc
	// args checks the positional arguments before the command runs.
	args argCheck
	// words are what a positional argument can be, for completion.
	words []string
	subs  []*command
}

// runFunc runs a command with its flags parsed.
type runFunc func(ctx context.Context, u *cmdline.UI, args []string) error

// argCheck checks a command's positional arguments; path is the command's
// name, such as "token revoke".
type argCheck func(path string, args []string) error

// noArgs refuses positional arguments, so that one meant as a flag's value
// (say, a runtime URL) is not silently ignored.
func noArgs(path string, args []string) error {
	if len(args) > 0 {
		return cmdline.Usagef("%s takes no arguments, but got %q (flags start with -)", path, args[0])
	}
	return nil
}

// between accepts min to max positional arguments; msg says what the
// command takes.
func between(min, max int, msg string) argCheck {
	return func(_ string, args []string) error {
		if len(args) < min || len(args) > max {
			return cmdline.Usagef("%s", msg)
		}
		return nil
	}
}

// commandTable is every command of vouch (a node-only build: the node's
// only), in the order `vouch help` lists
// them: its name, a one-line summary, its flags, what arguments it takes and
// the function that runs it.
func commandTable() *command {
	root := &command{name: "vouch", synopsis: "<command> [flags]", subs: []*command{
		{name: "node", summary: "run a gossip node that elects a verified leader (node id: print its key; node resign: hand over)",
			synopsis: "-p PORT [-n PEER]... -f ID -fh CHECKSUM [--exec [flags] -- CMD ARGS...] [flags]", flags: nodeFlags,
			subs: []*command{
				{name: "id", summary: "print the node's public key (created in --data if missing)", synopsis: "--data DIR",
					args: noArgs, flags: nodeIDFlags},
				{name: "resign", summary: "ask a leading node to stop acting and hand its leadership over", synopsis: "--http HOST:PORT",
					args: noArgs, flags: resignFlags},
			}},
		{name: "lock", summary: "run a command while this node leads, as a node does with --exec",
			synopsis: "-p PORT [-n PEER]... [node flags] -- CMD ARGS...", flags: lockFlags},
		{name: "status", summary: "show the cluster from nodes' HTTP endpoints, or joined as an observer, verifying the certificate here",
			synopsis: "(--node URL [--node URL]... | [--ref FILE] -n PEER) [--watch INTERVAL] [-o json]", args: noArgs, flags: statusFlags},
		{name: "cluster", summary: "create and sign a cluster configuration (init, add-member, show, ...)",
			synopsis: "<subcommand> [flags]", subs: []*command{
				{name: "init", summary: "create an owner key (if missing) and a signed configuration",
					synopsis: "--name NAME [--policy highest|lowest|fair|stake] [--open] [flags]", args: noArgs, flags: clusterInitFlags},
				{name: "add-member", summary: "add a member (ID, public key, optional stake) and re-sign",
					synopsis: "--id ID (--key KEY | --node-data DIR) [--stake N] [flags]", args: noArgs, flags: clusterAddMemberFlags},
				{name: "remove-member", summary: "remove a member and re-sign",
					synopsis: "--id ID [flags]", args: noArgs, flags: clusterRemoveMemberFlags},
				{name: "set", summary: "change the policy, lease, view TTL or open mode and re-sign",
					synopsis: "[--policy POLICY] [--lease DURATION] [--view-ttl DURATION] [--open true|false] [flags]", args: noArgs, flags: clusterSetFlags},
				{name: "show", summary: "print a configuration and check its signature",
					synopsis: "[--config cluster.json] [-o json]", args: noArgs, flags: clusterShowFlags},
			}},
		{name: "version", summary: "print the version, the commit it was built from and the Go version",
			synopsis: "[-o json]", args: noArgs, flags: versionFlags},
		{name: "completion", summary: "print a completion script for bash, zsh or fish",
			synopsis: "bash|zsh|fish", args: shellArg, words: shells, flags: completionFlags},
		{name: "help", summary: "print the help of vouch or of a command",
			synopsis: "[COMMAND [SUBCOMMAND]]", flags: helpFlags,
			args: between(0, 2, "help takes a command and at most one subcommand (vouch help cluster add-member)")},
	}}
	if !nodeOnly {
		root.insertBefore("node", runtimeCommands()...)
		root.insertBefore("version", demoCommand())
	}
	h := root.find("help")
	h.words = root.subNames()
	return root
}

// runtimeCommands are the runtime's and the client's commands, which a
// node-only build (-tags nodeonly) leaves out, so that it links no wasm
// runtime, raft or bbolt.
func runtimeCommands() []*command {
	return []*command{
		{name: "enclave", summary: "run the trusted function runtime (enclave join, members, remove: its replicas)",
			synopsis: "[flags]", args: noArgs, flags: enclaveFlags,
			subs: []*command{
				{name: "join", summary: "run a new replica that joins a replicated runtime through a running replica",
					synopsis: "URL --replica-id ID --raft-listen HOST:PORT [flags]", flags: enclaveJoinFlags,
					args: between(1, 1, "enclave join takes the URL of one running replica (vouch enclave join https://127.0.0.1:7070 --replica-id r2 --raft-listen 127.0.0.1:7171)")},
				{name: "members", summary: "list a replicated runtime's replicas, its leader and raft indexes",
					synopsis: "[--enclave URL] [-o json]", args: noArgs, flags: enclaveMembersFlags},
				{name: "remove", summary: "remove a replica from a replicated runtime (owner credential)",
					synopsis: "ID [--enclave URL]", args: between(1, 1, "enclave remove takes one replica ID"), flags: enclaveRemoveFlags},
				{name: "proxy", summary: "forward TCP to a runtime's vsock port in a Nitro enclave (on the parent instance)",
					synopsis: "--to vsock://CID:PORT [--listen HOST:PORT]", args: noArgs, flags: enclaveProxyFlags},
			}},
		{name: "deploy", summary: "deploy a function bundle (.wasm or folder) or a built-in",
			synopsis: "PATH | --builtin NAME [flags]", flags: deployFlags,
			args: between(0, 1, "deploy takes one PATH (a .wasm file or a bundle folder) or --builtin NAME")},
		{name: "run", summary: "run a function, checking its checksum first and its receipt after",
			synopsis: "<ID> [INPUT | -f FILE | -f -] --function-checksum HEX [flags]", flags: runFlags,
			args: between(0, 2, "give the input once: as an argument, or with -f FILE (-f - for stdin)")},
		{name: "list", summary: "list deployed functions",
			synopsis: "[flags]", args: noArgs, flags: listFlags},
		{name: "delete", summary: "delete a deployed function",
			synopsis: "ID [flags]", args: between(1, 1, "delete takes one function ID"), flags: deleteFlags},
		{name: "checksum", summary: "print a bundle's checksum, with no runtime involved",
			synopsis: "PATH | MODULE.wasm --manifest vouch.json | --builtin NAME", flags: checksumFlags,
			args: between(0, 1, "checksum takes one PATH (a .wasm file or a bundle folder), a .wasm file with --manifest FILE, or --builtin NAME")},
		{name: "verify", summary: "verify a run receipt offline",
			synopsis: "RECEIPT_FILE (--key PUBKEY | --enclave URL) [flags]", flags: verifyFlags,
			args: between(1, 1, "verify takes one RECEIPT_FILE (the output of `vouch run -o json`, or a bare receipt)")},
		{name: "token", summary: "mint a function token and reference (or: token revoke)",
			synopsis: "<ID> --function-checksum HEX [--expiry 24h] [-o json [--cluster-ref FILE | --gossip-key-file FILE] [--out FILE [--force]]]",
			args:     between(1, 1, "token takes one function ID"), flags: tokenFlags,
			subs: []*command{
				{name: "revoke", summary: "revoke a function token, durably", synopsis: "(TOKEN | --ref FILE)",
					args: between(0, 1, "token revoke takes one TOKEN or --ref FILE"), flags: tokenRevokeFlags},
			}},
		{name: "attest", summary: "verify a runtime's attestation and print its identity",
			synopsis: "[--enclave URL] [--allow-simulated] [--pcr 0:HEX] [-o json]", args: noArgs, flags: attestFlags},
	}
}

// demoCommand is vouch demo, which runs a runtime in the process.
func demoCommand() *command {
	return &command{name: "demo", summary: "run a runtime and a cluster of nodes, kill the leader, watch the failover",
		synopsis: "[--nodes 5] [--views] [--replicas 3] [--watch]", args: noArgs, flags: demoFlags}
}

// insertBefore inserts cs before the subcommand called name.
func (c *command) insertBefore(name string, cs ...*command) {
	i := slices.IndexFunc(c.subs, func(s *command) bool { return s.name == name })
	c.subs = slices.Insert(c.subs, i, cs...)
}

// find returns the subcommand called name, or nil.
func (c *command) find(name string) *command {
	for _, s := range c.subs {
		if s.name == name {
			return s
		}
	}
	return nil
}

func (c *command) subNames() []string {
	var names []string
	for _, s := range c.subs {
		names = append(names, s.name)
	}
	return names
}

// flagSet returns the command's flag set, with its flags registered, and
// the function that runs it. Warnings of the flags' helpers go to stderr.
func (c *command) flagSet(path string, stderr io.Writer) (*flag.FlagSet, runFunc) {
	fs := flag.NewFlagSet("vouch "+path, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var run runFunc
	if c.flags != nil {
		run = c.flags(fs)
	}
	return fs, run
}

func isHelpFlag(s string) bool { return s == "-h" || s == "-help" || s == "--help" }

func doMain(args []string, stdout, stderr io.Writer) int {
	u := &cmdline.UI{Prog: "vouch", Out: stdout, Err: stderr, Hint: libraryHint, FunctionLog: true}
	root := commandTable()
	if len(args) == 0 {
		printHelp(stderr, root, "")
		return 2
	}
	switch {
	case isHelpFlag(args[0]):
		printHelp(stdout, root, "")
		return 0
	case args[0] == "--version" || args[0] == "-version":
		args = append([]string{"version"}, args[1:]...)
	}
	c := root.find(args[0])
	if c == nil {
		u.Errorf("unknown command %q", args[0])
		if nodeOnly {
			u.Hintf("this vouch is the node-only build (-tags nodeonly): the runtime's, the client's and the demo's commands are in the full build")
		}
		u.Hintf("run `vouch help` for the list of commands")
		return 2
	}
	path, args := c.name, args[1:]
	for len(c.subs) > 0 && len(args) > 0 {
		s := c.find(args[0])
		if s == nil {
			break
		}
		c, path, args = s, path+" "+s.name, args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return u.Exit(path, runCommand(ctx, c, path, args, u))
}

// runCommand parses a command's flags and arguments and runs it.
func runCommand(ctx context.Context, c *command, path string, args []string, u *cmdline.UI) error {
	if c.flags == nil { // a group of subcommands
		switch {
		case len(args) == 0:
			return cmdline.Usagef("%s needs a subcommand: %s", path, orList(c.subNames()))
		case isHelpFlag(args[0]) || args[0] == "help":
			return help(u, append(strings.Fields(path), args[1:]...))
		}
		return cmdline.Usagef("unknown %s subcommand %q: want %s", path, args[0], orList(c.subNames()))
	}
	fs, run := c.flagSet(path, u.Err)
	config := configFlag(fs, path)
	pos, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printHelp(u.Out, c, path)
		return nil
	}
	if err != nil {
		return err
	}
	if err := applyConfig(fs, config); err != nil {
		return err
	}
	if err := checkFormats(fs); err != nil {
		return err
	}
	if c.args != nil {
		if err := c.args(path, pos); err != nil {
			return err
		}
	}
	return run(ctx, u, pos)
}

// parseFlags parses flags as cmdline.Parse does, and prints nothing: help
// and errors are the caller's to print.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	defer func() { fs.SetOutput(out); fs.Usage = usage }()
	return cmdline.Parse(fs, args)
}

// formatValue is an -o flag: an output format, one of those the command
// supports.
type formatValue struct {
	formats []string // the first is the default
	v       string
}

// formatFlag registers -o with the formats a command supports; the first
// is the default. usage says what each prints.
func formatFlag(fs *flag.FlagSet, usage string, formats ...string) *string {
	f := &formatValue{formats: formats, v: formats[0]}
	fs.Var(f, "o", "output `FORMAT`: "+orList(formats)+"; "+usage)
	return &f.v
}

func (f *formatValue) String() string {
	if f == nil {
		return ""
	}
	return f.v
}

func (f *formatValue) Set(s string) error { f.v = s; return nil }

// checkFormats refuses an -o value the command does not support.
func checkFormats(fs *flag.FlagSet) error {
	fl := fs.Lookup("o")
	if fl == nil {
		return nil
	}
	if f, ok := fl.Value.(*formatValue); ok && !slices.Contains(f.formats, f.v) {
		return cmdline.Usagef("-o %q: want %s", f.v, orList(f.formats))
	}
	return nil
}

// formats returns the -o values a flag set supports, or nil.
func formats(fs *flag.FlagSet) []string {
	if fl := fs.Lookup("o"); fl != nil {
		if f, ok := fl.Value.(*formatValue); ok {
			return f.formats
		}
	}
	return nil
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// help prints the help of the command named by names (all of vouch when
// there are none) on stdout.
func help(u *cmdline.UI, names []string) error {
	c, path := commandTable(), ""
	for _, n := range names {
		s := c.find(n)
		if s == nil {
			if path == "" {
				return cmdline.Usagef("no command %q: run `vouch help` for the list of commands", n)
			}
			return cmdline.Usagef("no command %q: `vouch %s` has %s", path+" "+n, path, orList(c.subNames()))
		}
		c, path = s, strings.TrimSpace(path+" "+n)
	}
	printHelp(u.Out, c, path)
	return nil
}

// printHelp prints a command's usage, subcommands and flags. path is ""
// for vouch itself.
func printHelp(w io.Writer, c *command, path string) {
	if path == "" {
		fmt.Fprintf(w, "vouch %s: leader election that peers can verify instead of trust.\n\nUsage: vouch <command> [flags]\n\nCommands:\n", version.Version)
		printCommands(w, c.subs)
		fmt.Fprint(w, "\nRun `vouch help <command>` or `vouch <command> -h` for a command's flags, and\n`vouch --version` for the version. Docs: README.md and docs/.\n")
		return
	}
	fmt.Fprintf(w, "Usage: vouch %s %s\n", path, c.synopsis)
	if c.flags != nil {
		for _, s := range c.subs {
			fmt.Fprintf(w, "       vouch %s %s %s\n", path, s.name, s.synopsis)
		}
	}
	if c.summary != "" {
		fmt.Fprintf(w, "\n%s.\n", strings.ToUpper(c.summary[:1])+c.summary[1:])
	}
	if len(c.subs) > 0 {
		fmt.Fprint(w, "\nSubcommands:\n")
		printCommands(w, c.subs)
	}
	if c.flags != nil {
		fs, _ := c.flagSet(path, io.Discard)
		fmt.Fprint(w, "\nFlags:\n")
		printFlags(w, fs)
	}
	if len(c.subs) > 0 {
		fmt.Fprintf(w, "\nRun `vouch %s <subcommand> -h` for a subcommand's flags.\n", path)
	}
}

func printCommands(w io.Writer, cs []*command) {
	width := 0
	for _, c := range cs {
		width = max(width, len(c.name))
	}
	for _, c := range cs {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
}

// printFlags prints a flag set's flags as flag.PrintDefaults does, with
// two differences: a boolean flag never shows a value name, and flags of
// more than two letters show with two dashes, as the docs write them.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		if isBoolFlag(f) {
			name = ""
		}
		line := "  " + dashed(f.Name)
		if name != "" {
			line += " " + name
		}
		usage = strings.ReplaceAll(usage, "\n", "\n      ")
		if !isZeroDefault(f) {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "%s\n      %s\n", line, usage)
	})
}

// dashed writes a flag the way the docs do: -p, -fh, --enclave. The flag
// package accepts one dash or two for any of them.
func dashed(name string) string {
	if len(name) == 1 || singleDash[name] {
		return "-" + name
	}
	return "--" + name
}

// singleDash are the longer flags written with one dash: -fh, as in the
// original command line `vouch node -p 5000 -n 5001 -f ID -fh SUM`.
var singleDash = map[string]bool{"fh": true}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// takesValue reports whether a flag needs a value.
func takesValue(f *flag.Flag) bool { return !isBoolFlag(f) }

// isZeroDefault reports whether a flag's default is its type's zero value,
// which the help does not show.
func isZeroDefault(f *flag.Flag) bool {
	t := reflect.TypeOf(f.Value)
	var z reflect.Value
	if t.Kind() == reflect.Pointer {
		z = reflect.New(t.Elem())
	} else {
		z = reflect.Zero(t)
	}
	zv, ok := z.Interface().(flag.Value)
	return ok && f.DefValue == zv.String()
}

func helpFlags(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, u *cmdline.UI, args []string) error { return help(u, args) }
}
