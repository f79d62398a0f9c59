package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jobstream/jobstream/internal/store"
)

const analystAbout = `Manage analyst roles: PostgreSQL LOGIN roles that may read (never write)
the tables and views of one tenant only, enforced by row-level security.

  analyst create --tenant T [--name ROLE]   create a role and print a connection string (DSN) for it
  analyst list                               list analyst roles and their tenants
  analyst drop ROLE                          drop an analyst role

The password is generated, printed once in the DSN, and sent to the server
only as a SCRAM-SHA-256 secret. Creating roles needs a database role with
CREATEROLE (the one that migrated the database). The database is found as
for 'serve' (DATABASE_URL, else local, else private cluster).`

func cmdAnalyst(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("analyst needs a subcommand: create, list or drop (run 'jobstream analyst --help')")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(e.stdout, "Usage: jobstream analyst create|list|drop [flags]\n\n%s\n", analystAbout)
		return nil
	case "create":
		return cmdAnalystCreate(ctx, e, args[1:])
	case "list":
		return cmdAnalystList(ctx, e, args[1:])
	case "drop":
		return cmdAnalystDrop(ctx, e, args[1:])
	}
	return usagef("unknown analyst subcommand %q: want create, list or drop", args[0])
}

func cmdAnalystCreate(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "analyst create", "--tenant T [--name ROLE]", "Create a read-only LOGIN role that sees only tenant T's rows, and print its DSN.")
	tenant := tenantFlag(fs)
	name := fs.String("name", "", "role name: lowercase letters, digits, _ (default analyst_<random>)")
	dataDir := dataDirFlag(e, fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 || strings.TrimSpace(*tenant) == "" {
		return usagef("analyst create needs --tenant T, e.g. jobstream analyst create --tenant acme")
	}
	dsn, err := resolveURL(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	st, closeDB, err := keyStore(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	defer closeDB()
	a, password, err := st.AnalystCreate(ctx, *name, strings.TrimSpace(*tenant))
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("a role named %s exists already", *name)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, withUser(dsn, a.Role, password))
	fmt.Fprintf(e.stderr, "analyst role %s created for tenant %s; the password is not stored: keep the DSN now\n", a.Role, a.Tenant)
	return nil
}

func cmdAnalystList(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "analyst list", "", "List analyst roles and the tenant each may see.")
	dataDir := dataDirFlag(e, fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 {
		return usagef("analyst list takes no arguments")
	}
	st, closeDB, err := keyStore(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	defer closeDB()
	as, err := st.AnalystList(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tTENANT\tCREATED")
	for _, a := range as {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Role, a.Tenant, a.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func cmdAnalystDrop(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "analyst drop", "ROLE", "Drop an analyst role: it can no longer log in.")
	dataDir := dataDirFlag(e, fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) != 1 {
		return usagef("analyst drop needs exactly one role name")
	}
	st, closeDB, err := keyStore(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	defer closeDB()
	if err := st.AnalystDrop(ctx, pos[0]); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s is not an analyst role (jobstream analyst list shows them)", pos[0])
	} else if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "dropped %s\n", pos[0])
	return nil
}
