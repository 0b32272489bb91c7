// Command continuum is the command-line client of continuumd. It talks to the
// daemon over its Unix socket with the same MessagePack-RPC methods every
// other client uses (ipc/client), and adds nothing the protocol does not have.
//
// Subcommands come from one table (groups, below): top-level commands such as
// `continuum info`, and groups such as `continuum events emit`. Adding a group
// (log, model, generate, grid) is a new file that defines a group value plus
// one line in that table.
//
// Promises, for scripts:
//   - exit status 0 on success, 1 when the daemon or the connection fails
//     (stderr says "error: CODE: message" with the catalogue code), 2 on a
//     usage error (bad flags, missing arguments);
//   - --json (or --output json) prints machine-readable JSON: one document, or
//     one object per line for streaming commands (events tail, commands serve);
//   - byte strings in output are base64 (as encoding/json writes []byte).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/api/paths"
	flag "github.com/spf13/pflag"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// defaultTimeout bounds each call to the daemon unless --timeout says otherwise.
const defaultTimeout = 10 * time.Second

func main() {
	progName = invokedAs(os.Args[0])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what every subcommand gets: the streams and the global flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	socket  string        // --socket; "" is the daemon's default path
	timeout time.Duration // --timeout; 0 means none
	output  string        // --output: "text" or "json"
	json    bool          // --json (where it is the output switch)
}

func (e *env) jsonOut() bool { return e.output == "json" }

// action runs a subcommand once its flags are parsed; args are the positional
// arguments. ctx ends on Ctrl-C / SIGTERM.
type action func(ctx context.Context, e *env, args []string) error

// command is one subcommand.
type command struct {
	name    string // the word after the group's name: "emit"
	args    string // synopsis of the positional arguments: "NAME"
	summary string // one line, for the command list
	help    string // paragraphs for --help
	example string // one or more example lines, without the leading "$ "
	minArgs int
	maxArgs int // -1: no limit
	// inputJSON says --json is this command's input (params, payload), not
	// the output switch; --output json still selects JSON output.
	inputJSON bool
	// flags binds the command's own flags and returns what runs it.
	flags func(fs *flag.FlagSet) action
}

// group is a set of subcommands under one word; the group named "" holds the
// top-level commands.
type group struct {
	name     string
	summary  string
	commands []*command
}

// groups is the table of every subcommand, in the order help lists them.
var groups = []*group{
	topGroup,
	commandsGroup,
	eventsGroup,
	logGroup,
	modelGroup,
	gridGroup,
	alloyGroup,
	contractsGroup,
	personaGroup,
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct {
	path string // "events emit", for the hint; "" for the top level
	msg  string
}

func (u *usageError) Error() string { return u.msg }

func usagef(path, format string, args ...any) error {
	return &usageError{path: path, msg: fmt.Sprintf(format, args...)}
}

// run is the whole CLI: it parses args, runs one subcommand, prints what it
// returns, and reports the exit status. Tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, output: "text", timeout: defaultTimeout}
	err := dispatch(ctx, e, args)
	return report(e, err)
}

// report prints err and maps it to an exit status.
func report(e *env, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(e.stderr, "error: %s\n", ue.msg)
		fmt.Fprintf(e.stderr, "Run '%s --help' for usage.\n", strings.TrimSpace("continuum "+ue.path))
		return exitUsage
	}
	var de *dialError
	if errors.As(err, &de) {
		fmt.Fprintf(e.stderr, "error: %s\n", de.Error())
		return exitError
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		fmt.Fprintf(e.stderr, "error: %s: %s\n", ae.Code, ae.Message)
		if ae.Data != nil {
			if b, jerr := marshalJSON(ae.Data, false); jerr == nil {
				fmt.Fprintf(e.stderr, "  data: %s\n", b)
			}
		}
		return exitError
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(e.stderr, "error: %s: no answer from continuumd within %s (raise --timeout)\n", api.CodeDeadlineExceeded, e.timeout)
		return exitError
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(e.stderr, "error: %s: interrupted\n", api.CodeCancelled)
		return exitError
	}
	fmt.Fprintf(e.stderr, "error: %v\n", err)
	return exitError
}

// dispatch finds the subcommand, parses its flags and runs it.
func dispatch(ctx context.Context, e *env, args []string) error {
	// Global flags may come before the subcommand too: continuum --socket S info.
	top := flag.NewFlagSet("continuum", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	top.SetInterspersed(false)
	help := top.BoolP("help", "h", false, "show help")
	bindGlobal(top, e, false)
	if err := top.Parse(args); err != nil {
		return usagef("", "%s", flagHint(err, top))
	}
	rest := top.Args()
	if *help || (len(rest) > 0 && rest[0] == "help") {
		if len(rest) > 0 && rest[0] == "help" {
			rest = rest[1:]
		}
		return printHelpFor(e.stdout, rest)
	}
	if len(rest) == 0 {
		printMainHelp(e.stderr)
		return usagef("", "no subcommand given")
	}
	cmd, g, err := lookup(rest)
	var gh *groupHelp
	if errors.As(err, &gh) {
		printGroupHelp(e.stdout, gh.g)
		return flag.ErrHelp
	}
	if err != nil {
		return err
	}
	if g.name != "" {
		rest = rest[1:]
	}
	return runCommand(ctx, e, g, cmd, rest[1:])
}

// lookup finds the command that words name, or explains what is wrong.
func lookup(words []string) (*command, *group, error) {
	first := words[0]
	for _, c := range topGroup.commands {
		if c.name == first {
			return c, topGroup, nil
		}
	}
	for _, g := range groups {
		if g.name == "" || g.name != first {
			continue
		}
		if len(words) < 2 || strings.HasPrefix(words[1], "-") {
			if len(words) >= 2 && (words[1] == "-h" || words[1] == "--help") {
				return nil, nil, helpShown(g)
			}
			return nil, nil, usagef(g.name, "%q needs a subcommand: %s", g.name, commandNames(g))
		}
		for _, c := range g.commands {
			if c.name == words[1] {
				return c, g, nil
			}
		}
		if words[1] == "help" {
			return nil, nil, helpShown(g)
		}
		return nil, nil, usagef(g.name, "unknown subcommand %q%s; %q has: %s", g.name+" "+words[1], didYouMean(words[1], strings.Split(commandNames(g), ", ")), g.name, commandNames(g))
	}
	var firsts []string
	for _, c := range topGroup.commands {
		firsts = append(firsts, c.name)
	}
	for _, g := range groups {
		if g.name != "" {
			firsts = append(firsts, g.name)
		}
	}
	return nil, nil, usagef("", "unknown subcommand %q%s; run 'continuum --help' for the list", first, didYouMean(first, firsts))
}

// helpShown is returned by lookup when a group's help was asked for; dispatch
// prints it on stdout.
func helpShown(g *group) error {
	return &groupHelp{g: g}
}

type groupHelp struct{ g *group }

func (h *groupHelp) Error() string { return "help" }

func commandNames(g *group) string {
	names := make([]string, len(g.commands))
	for i, c := range g.commands {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// runCommand parses the command's flags and runs it.
func runCommand(ctx context.Context, e *env, g *group, c *command, args []string) error {
	path := commandPath(g, c)
	local := flag.NewFlagSet("continuum "+path, flag.ContinueOnError)
	local.SetOutput(io.Discard)
	act := c.flags(local)
	global := flag.NewFlagSet("global", flag.ContinueOnError)
	bindGlobal(global, e, c.inputJSON)

	fs := flag.NewFlagSet("continuum "+path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.AddFlagSet(local)
	fs.AddFlagSet(global)
	help := fs.BoolP("help", "h", false, "show this help")
	if err := fs.Parse(args); err != nil {
		return usagef(path, "%s", flagHint(err, fs))
	}
	if *help {
		printCommandHelp(e.stdout, g, c, local, global)
		return flag.ErrHelp
	}
	if e.json {
		e.output = "json"
	}
	if e.output != "text" && e.output != "json" {
		return usagef(path, "--output %q: want text or json", e.output)
	}
	if e.timeout < 0 {
		return usagef(path, "--timeout must not be negative")
	}
	pos := fs.Args()
	switch {
	case len(pos) < c.minArgs:
		return usagef(path, "missing argument: usage: continuum %s %s", path, c.args)
	case c.maxArgs >= 0 && len(pos) > c.maxArgs:
		return usagef(path, "unexpected argument %q: usage: continuum %s %s", pos[c.maxArgs], path, c.args)
	}
	return act(ctx, e, pos)
}

func commandPath(g *group, c *command) string {
	if g.name == "" {
		return c.name
	}
	return g.name + " " + c.name
}

// bindGlobal defines the flags every subcommand takes. Values already set (by
// flags before the subcommand) become the defaults, so both positions work.
func bindGlobal(fs *flag.FlagSet, e *env, inputJSON bool) {
	socketDefault := e.socket
	if socketDefault == "" {
		socketDefault = paths.Socket()
	}
	fs.StringVar(&e.socket, "socket", socketDefault, "daemon socket")
	fs.DurationVar(&e.timeout, "timeout", e.timeout, "deadline for each call to the daemon; 0 for none (tail and serve wait until Ctrl-C regardless)")
	fs.StringVarP(&e.output, "output", "o", e.output, "output format: text or json")
	if !inputJSON {
		fs.BoolVar(&e.json, "json", e.json, "same as --output json")
	}
}

// progName is how examples in --help name the CLI: as it was invoked when
// that was by a path (bin/continuum from a checkout, where it is not on
// PATH), else "continuum".
var progName = "continuum"

// invokedAs is the name to print for argv0: the path as typed when it has a
// folder in it, so that examples can be pasted as they are.
func invokedAs(argv0 string) string {
	if !strings.Contains(argv0, "/") || strings.Contains(argv0, "go-build") {
		return "continuum"
	}
	return argv0
}

// exampleLine rewrites the words "continuum" and "continuumd" of an
// example to the binaries next to this one, so that `bin/continuum events
// emit --help` prints lines that run from a checkout.
func exampleLine(line string) string {
	if progName == "continuum" {
		return line
	}
	words := strings.Split(line, " ")
	for i, w := range words {
		switch w {
		case "continuum":
			words[i] = progName
		case "continuumd":
			words[i] = progName + "d"
		}
	}
	return strings.Join(words, " ")
}

// printMainHelp lists every subcommand.
func printMainHelp(w io.Writer) {
	fmt.Fprint(w, `continuum: the command-line client of continuumd

Usage: continuum [global flags] SUBCOMMAND [args] [flags]

Subcommands:
`)
	tw := newTable(w)
	for _, g := range groups {
		for _, c := range g.commands {
			fmt.Fprintf(tw, "  %s %s\t%s\n", commandPath(g, c), c.args, c.summary)
		}
	}
	tw.Flush()
	global := flag.NewFlagSet("global", flag.ContinueOnError)
	bindGlobal(global, &env{output: "text", timeout: defaultTimeout}, false)
	fmt.Fprintf(w, `
Global flags (on every subcommand):
%s
Run 'continuum SUBCOMMAND --help' for a subcommand's flags and an example.
Exit status: 0 success, 1 error (stderr names the error code), 2 usage error.
`, global.FlagUsages())
}

// printHelpFor prints help for the words after "help".
func printHelpFor(w io.Writer, words []string) error {
	if len(words) == 0 {
		printMainHelp(w)
		return flag.ErrHelp
	}
	c, g, err := lookup(words)
	var gh *groupHelp
	switch {
	case errors.As(err, &gh):
		printGroupHelp(w, gh.g)
		return flag.ErrHelp
	case err != nil:
		var ue *usageError
		if errors.As(err, &ue) && len(words) == 1 {
			for _, gg := range groups {
				if gg.name == words[0] {
					printGroupHelp(w, gg)
					return flag.ErrHelp
				}
			}
		}
		return err
	}
	local := flag.NewFlagSet("local", flag.ContinueOnError)
	c.flags(local)
	global := flag.NewFlagSet("global", flag.ContinueOnError)
	bindGlobal(global, &env{output: "text", timeout: defaultTimeout}, c.inputJSON)
	printCommandHelp(w, g, c, local, global)
	return flag.ErrHelp
}

func printGroupHelp(w io.Writer, g *group) {
	fmt.Fprintf(w, "continuum %s: %s\n\nSubcommands:\n", g.name, g.summary)
	tw := newTable(w)
	for _, c := range g.commands {
		fmt.Fprintf(tw, "  %s %s\t%s\n", commandPath(g, c), c.args, c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun 'continuum %s SUBCOMMAND --help' for details.\n", g.name)
}

func printCommandHelp(w io.Writer, g *group, c *command, local, global *flag.FlagSet) {
	path := commandPath(g, c)
	fmt.Fprintf(w, "Usage: continuum %s %s [flags]\n\n%s\n", path, c.args, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	if c.example != "" {
		fmt.Fprintln(w, "\nExample:")
		for _, line := range strings.Split(strings.TrimSpace(c.example), "\n") {
			fmt.Fprintf(w, "  %s\n", exampleLine(line))
		}
	}
	if local.HasFlags() {
		fmt.Fprintf(w, "\nFlags:\n%s", local.FlagUsages())
	}
	fmt.Fprintf(w, "\nGlobal flags:\n%s", global.FlagUsages())
}
