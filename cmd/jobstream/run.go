package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// errSilent ends the process with status 1 after the command already
// explained itself.
var errSilent = errors.New("")

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

// env is what a command may touch: no globals, so tests call run directly.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func commands() []command {
	return []command{
		{"serve", "run the API and workers (the sim engine is built in)", cmdServe},
		{"migrate", "apply or roll back database migrations: up | down | status", cmdMigrate},
		{"ask", "submit a prompt and print the answer as it streams", cmdAsk},
		{"tail", "follow a job's chunks from an offset to its end", cmdTail},
		{"keys", "create, list or revoke API keys", cmdKeys},
		{"engines", "list the configured engines (without secrets)", cmdEngines},
		{"bench", "measure throughput and delivery latency under load", cmdBench},
		{"version", "print the version", cmdVersion},
	}
}

const topUsage = `jobstream: durable streaming of LLM output on PostgreSQL.

Usage:
  jobstream <command> [flags] [args]

Commands:
%s
Run 'jobstream <command> --help' for a command's flags.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	var list strings.Builder
	for _, c := range commands() {
		fmt.Fprintf(&list, "  %-9s %s\n", c.name, c.summary)
	}
	if len(args) == 0 {
		fmt.Fprintf(stderr, topUsage, list.String())
		return usagef("no command given")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(stdout, topUsage, list.String())
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	return usagef("unknown command %q (run 'jobstream --help')", args[0])
}

// newFlags returns a FlagSet whose usage names the command, writing to
// stdout for --help.
func newFlags(e *env, name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: jobstream %s %s\n\n%s\n\nFlags:\n", name, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags that may come before or after positional arguments
// (`ask "prompt" --engine sim`) and returns the positionals. --help prints
// usage to stdout and returns flag.ErrHelp.
func parse(e *env, fs *flag.FlagSet, args []string) ([]string, error) {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return nil, flag.ErrHelp
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func helpOK(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}
