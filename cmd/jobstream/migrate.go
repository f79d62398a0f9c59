package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/user"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/pgsetup"
	"github.com/jobstream/jobstream/internal/store"
)

const migrateAbout = `Apply (up, the default), roll back the latest (down), or list (status) the
database migrations embedded in this binary. Run it as the database owner:
in production the owner migrates and 'serve' runs as a role that cannot
alter the schema (JOBSTREAM_SERVER_DATABASE_URL), and refuses to serve a
database that is not at this binary's latest migration. Handed the owner's
DATABASE_URL, 'serve' migrates on start by itself.
The database is found as for 'serve' (DATABASE_URL, else local, else private cluster).`

func cmdMigrate(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "migrate", "[up|down|status]", migrateAbout)
	dataDir := fs.String("data-dir", e.getenv("JOBSTREAM_DATA_DIR"), "data directory for the private PostgreSQL cluster (env JOBSTREAM_DATA_DIR)")
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) == 0 {
		pos = []string{"up"}
	}
	if len(pos) != 1 || (pos[0] != "up" && pos[0] != "down" && pos[0] != "status") {
		return usagef("migrate takes one of up (the default), down, status")
	}
	pool, err := connect(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := store.NewMigrator(pool)
	if err != nil {
		return err
	}
	defer m.Close()
	switch pos[0] {
	case "up":
		n, err := m.Up(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "applied %d migration(s)\n", n)
	case "down":
		if err := m.Down(ctx); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "rolled back one migration")
	case "status":
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		for _, s := range st {
			state := "pending"
			if s.Applied {
				state = "applied"
			}
			fmt.Fprintf(e.stdout, "%-8s %05d %s\n", state, s.Version, s.Name)
		}
	}
	return nil
}

// connect resolves the database like serve and returns a small pool.
func connect(ctx context.Context, e *env, dataDir string) (*pgxpool.Pool, error) {
	res, err := pgsetup.Resolve(ctx, dbConfig(e, dataDir))
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(res.URL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.MaxConns = 4
	// Changes a command makes are recorded with the person who ran it
	// (admin_events and job_events name it as the actor; the database
	// adds its own role).
	cfg.ConnConfig.RuntimeParams["jobstream.actor"] = cliActor(e)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return pool, nil
}

// cliActor names the person running a command in the audit trail: "cli:"
// and osUser.
func cliActor(e *env) string { return "cli:" + osUser(e) }

// osUser is the OS user at this host, "unknown" for what cannot be told.
func osUser(e *env) string {
	name := e.getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	return cmp.Or(name, "unknown") + "@" + cmp.Or(host, "unknown")
}
