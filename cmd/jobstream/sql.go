package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/jobstream/jobstream/internal/pgsetup"
)

const sqlAbout = `Open psql on the database jobstream uses: DATABASE_URL when set, else the
local PostgreSQL server, else jobstream's private cluster (started if
needed), exactly as 'serve' finds it. --print prints the connection string
instead. Arguments after -- go to psql, e.g.
  jobstream sql -- -c 'SELECT status, count(*) FROM jobs GROUP BY 1'
sql/README.md has example queries.`

func cmdSQL(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "sql", "[--print] [-- PSQL_ARGS...]", sqlAbout)
	printDSN := fs.Bool("print", false, "print the connection string and exit")
	dataDir := dataDirFlag(e, fs)
	var psqlArgs []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, psqlArgs = args[:i], args[i+1:]
	}
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 {
		return usagef("sql takes psql's arguments after --, got %q", pos)
	}
	pos = psqlArgs
	dsn, err := resolveURL(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	if *printDSN {
		if len(pos) > 0 {
			return usagef("--print takes no psql arguments")
		}
		fmt.Fprintln(e.stdout, dsn)
		return nil
	}
	psql := pgsetup.FindClient(e.getenv, "psql")
	if psql == "" {
		return fmt.Errorf("psql not found on PATH or in the PostgreSQL install directories; install the PostgreSQL client (apt install postgresql-client) or connect with: %s", dsn)
	}
	cmd := exec.CommandContext(ctx, psql, append([]string{dsn}, pos...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, e.stdout, e.stderr
	if f, ok := e.stdin.(*os.File); ok {
		cmd.Stdin = f // a terminal stays a terminal for psql's line editing
	}
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return errSilent // psql said why
	}
	return err
}

// resolveURL finds the database like serve does and returns its URL.
func resolveURL(ctx context.Context, e *env, dataDir string) (string, error) {
	res, err := pgsetup.Resolve(ctx, dbConfig(e, dataDir))
	if err != nil {
		return "", err
	}
	return res.URL, nil
}

// withUser returns dsn (a URL or key=value string) logging in as user with
// password.
func withUser(dsn, user, password string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			u.User = url.UserPassword(user, password)
			return u.String()
		}
	}
	var kept []string
	for _, f := range strings.Fields(dsn) {
		if !strings.HasPrefix(f, "user=") && !strings.HasPrefix(f, "password=") {
			kept = append(kept, f)
		}
	}
	return strings.Join(append(kept, "user="+user, "password="+password), " ")
}
