package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/jobstream/jobstream/internal/pgsetup"
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

// handlesInterrupts are the commands that read env.interrupts themselves;
// for the others the first signal ends their context.
var handlesInterrupts = map[string]bool{"ask": true}

// env is what a command may touch: no globals, so tests call run directly.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// interrupts delivers SIGINT (Ctrl-C) and SIGTERM; nil when nothing
	// sends any.
	interrupts <-chan os.Signal
}

func commands() []command {
	return []command{
		{"serve", "run the API and workers (the sim engine is built in)", cmdServe},
		{"migrate", "apply (as the database owner) or roll back database migrations: up | down | status", cmdMigrate},
		{"ask", "submit a prompt and print the answer as it streams", cmdAsk},
		{"jobs", "list recent jobs: id, status, engine, age, tokens, time to first token", cmdJobs},
		{"tail", "follow a job's output from an offset to its end", cmdTail},
		{"keys", "create, list or revoke API keys", cmdKeys},
		{"engines", "list the configured engines (without secrets)", cmdEngines},
		{"retention", "run a retention pass, or set tenants' retention policies", cmdRetention},
		{"hold", "keep a job past any retention policy (legal hold); list holds", cmdHold},
		{"unhold", "lift a job's legal hold", cmdUnhold},
		{"erase", "erase a job's content, keeping its hashes, seal and log (GDPR Art. 17)", cmdErase},
		{"db", "show, start or stop the database jobstream uses: status | start | stop | url", cmdDB},
		{"verify", "recompute jobs' hash chains; exit 1 if any record was altered", cmdVerify},
		{"audit", "check the database against a signed checkpoint of its log; exit 1 naming every bad job", cmdAudit},
		{"log", "the transparency log's signer key: keygen", cmdLog},
		{"export", "write jobs, their chunks with hashes, and their audit trail as JSON Lines", cmdExport},
		{"analyst", "create read-only database roles confined to one tenant", cmdAnalyst},
		{"sql", "open psql on jobstream's database (--print: show the DSN)", cmdSQL},
		{"bench", "measure throughput and delivery latency under load", cmdBench},
		{"version", "print the version", cmdVersion},
	}
}

const topUsage = `jobstream: durable streaming of LLM output on PostgreSQL.

Usage:
  jobstream <command> [flags] [args]

Commands:
%s
Run 'jobstream help <command>' (or 'jobstream <command> --help') for a command's flags,
and 'jobstream --version' for the version.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	return runEnv(ctx, &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}, args)
}

func runEnv(ctx context.Context, e *env, args []string) error {
	var list strings.Builder
	for _, c := range commands() {
		fmt.Fprintf(&list, "  %-10s %s\n", c.name, c.summary)
	}
	if len(args) == 0 {
		fmt.Fprintf(e.stderr, topUsage, list.String())
		return usagef("no command given")
	}
	switch args[0] {
	case "help":
		// `help ask` is `ask --help`.
		if len(args) > 1 {
			return runEnv(ctx, e, []string{args[1], "--help"})
		}
		fmt.Fprintf(e.stdout, topUsage, list.String())
		return nil
	case "-h", "-help", "--help":
		fmt.Fprintf(e.stdout, topUsage, list.String())
		return nil
	case "-version", "--version":
		return runEnv(ctx, e, []string{"version"})
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		if !handlesInterrupts[c.name] && e.interrupts != nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			go func() {
				select {
				case <-e.interrupts:
					cancel()
				case <-ctx.Done():
				}
			}()
		}
		return c.run(ctx, e, args[1:])
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
		// A connection string's default comes from the environment and
		// may carry a password.
		fs.VisitAll(func(f *flag.Flag) {
			if strings.HasSuffix(f.Name, "url") {
				f.DefValue = pgsetup.Redact(f.DefValue)
			}
		})
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
	// The flag package prints the error and the whole usage on a bad flag;
	// one line naming the flag and --help is what helps.
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, flagError(fs, err)
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

var (
	badValue    = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for flag -(\S+): (.*)$`)
	unknownFlag = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	needsValue  = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
)

// flagError turns the flag package's error into one line that names the
// flag with its double dash, says what it wants, and points at --help.
func flagError(fs *flag.FlagSet, err error) error {
	help := fmt.Sprintf("see 'jobstream %s --help'", fs.Name())
	msg := err.Error()
	if m := badValue.FindStringSubmatch(msg); m != nil {
		want := m[3]
		if f := fs.Lookup(m[2]); f != nil {
			if g, ok := f.Value.(flag.Getter); ok {
				switch g.Get().(type) {
				case bool:
					want = "want true or false"
				case int, int64, uint, uint64:
					want = "want an integer"
				case float64:
					want = "want a number"
				case time.Duration:
					want = "want a duration such as 30s or 5m"
				}
			}
		}
		return usagef("invalid value %q for --%s: %s; %s", m[1], m[2], want, help)
	}
	if m := unknownFlag.FindStringSubmatch(msg); m != nil {
		return usagef("unknown flag --%s; %s", m[1], help)
	}
	if m := needsValue.FindStringSubmatch(msg); m != nil {
		return usagef("--%s needs a value; %s", m[1], help)
	}
	return usagef("%s; %s", msg, help)
}

func helpOK(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}
