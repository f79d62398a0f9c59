package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/pgsetup"
	"github.com/jobstream/jobstream/internal/store"
)

const dbAbout = `Show or control the database jobstream uses, found as for 'serve': DATABASE_URL
when set, else the server PGHOST/PGPORT name, else the private cluster if one
was created in the data directory before, else a PostgreSQL server running on
this machine, else a new private cluster (when the PostgreSQL server binaries
are installed).

  db status   which database jobstream uses and why; the private cluster's state
  db start    create the private cluster if needed and start it; from then on it
              is used before any local server (DATABASE_URL and PGHOST still win)
  db stop     stop the private cluster (fast shutdown: open sessions are rolled
              back) and wait until its processes are gone
  db url      print the connection URL (starting the private cluster if it is
              the choice, migrating the database), e.g. psql "$(jobstream db url)"

The private cluster keeps running when serve exits, so that the next start is
instant; 'db stop' stops it. It listens only on a Unix socket in the data
directory, never on TCP.`

func cmdDB(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("db needs a subcommand: status, start, stop or url (run 'jobstream db --help')")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(e.stdout, "Usage: jobstream db status|start|stop|url [--data-dir DIR]\n\n%s\n", dbAbout)
		return nil
	case "status", "start", "stop", "url":
	default:
		return usagef("unknown db subcommand %q: want status, start, stop or url", args[0])
	}
	sub := args[0]
	fs := newFlags(e, "db "+sub, "[--data-dir DIR]", dbAbout)
	dataDir := dataDirFlag(e, fs)
	asJSON := false
	if sub == "status" {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	}
	pos, err := parse(e, fs, args[1:])
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 {
		return usagef("db %s takes no arguments, got %q", sub, pos)
	}
	cfg := dbConfig(e, *dataDir)
	if sub == "start" {
		cfg.Logf = func(format string, args ...any) { fmt.Fprintf(e.stderr, format+"\n", args...) }
	}
	switch sub {
	case "status":
		return dbStatus(ctx, e, cfg, asJSON)
	case "start":
		return dbStart(ctx, e, cfg)
	case "stop":
		return dbStop(ctx, e, cfg)
	default:
		// Migrated, like keys, so that psql finds the tables even before
		// the first serve.
		url, err := migratedURL(ctx, e, cfg)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(e.stdout, url)
		return err
	}
}

func migratedURL(ctx context.Context, e *env, cfg pgsetup.Config) (string, error) {
	res, err := pgsetup.Resolve(ctx, cfg)
	if err != nil {
		return "", err
	}
	pool, err := pgxpool.New(ctx, res.URL)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	if err := store.Migrate(ctx, pool); err != nil {
		return "", err
	}
	return res.URL, nil
}

// dbConfig is how every command finds the database: as serve does, with
// warnings (such as a directory whose mode had to change) on stderr.
func dbConfig(e *env, dataDir string) pgsetup.Config {
	return pgsetup.Config{
		DatabaseURL: e.getenv("DATABASE_URL"),
		DataDir:     dataDir,
		Getenv:      e.getenv,
		Logf:        func(string, ...any) {},
		Warnf:       func(format string, args ...any) { fmt.Fprintf(e.stderr, format+"\n", args...) },
	}
}

// dbStatusJSON is `db status --json`.
type dbStatusJSON struct {
	URL     string               `json:"url"` // password hidden
	Source  string               `json:"source"`
	Why     string               `json:"why"`
	Hint    string               `json:"to_use_another"`
	Cluster pgsetup.ClusterState `json:"private_cluster"`
}

func dbStatus(ctx context.Context, e *env, cfg pgsetup.Config, asJSON bool) error {
	res, chooseErr := pgsetup.Choose(ctx, cfg)
	st, err := pgsetup.ClusterStatus(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		if chooseErr != nil {
			return chooseErr
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(dbStatusJSON{URL: pgsetup.Redact(res.URL), Source: res.Source, Why: res.Why, Hint: res.Hint, Cluster: st})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if chooseErr == nil {
		fmt.Fprintf(tw, "database:\t%s (%s)\n", pgsetup.Redact(res.URL), res.Source)
		fmt.Fprintf(tw, "why:\t%s\n", res.Why)
		fmt.Fprintf(tw, "to use another:\t%s\n", res.Hint)
	}
	fmt.Fprintf(tw, "private cluster:\t%s: %s\n", st.DataDir, clusterState(st))
	if err := tw.Flush(); err != nil {
		return err
	}
	return chooseErr
}

func clusterState(st pgsetup.ClusterState) string {
	switch {
	case !st.Initialised:
		return "not created"
	case st.Running:
		return fmt.Sprintf("running, pid %d (log %s)", st.PID, st.Log)
	default:
		return fmt.Sprintf("stopped (log %s)", st.Log)
	}
}

func dbStart(ctx context.Context, e *env, cfg pgsetup.Config) error {
	res, err := pgsetup.StartCluster(ctx, cfg)
	if err != nil {
		return err
	}
	st, err := pgsetup.ClusterStatus(ctx, cfg)
	if err != nil {
		return err
	}
	verb := "already running"
	if res.Stop != nil {
		verb = "started"
	}
	fmt.Fprintf(e.stdout, "private cluster in %s: %s, pid %d\n", st.DataDir, verb, st.PID)
	if cfg.DatabaseURL != "" {
		fmt.Fprintln(e.stderr, "note: DATABASE_URL is set, so serve uses that database, not this cluster")
	}
	return nil
}

func dbStop(ctx context.Context, e *env, cfg pgsetup.Config) error {
	before, err := pgsetup.StopCluster(ctx, cfg)
	if err != nil {
		return err
	}
	switch {
	case !before.Initialised:
		fmt.Fprintf(e.stdout, "private cluster in %s: not created, nothing to stop\n", before.DataDir)
	case before.PID == 0:
		fmt.Fprintf(e.stdout, "private cluster in %s: not running\n", before.DataDir)
	default:
		fmt.Fprintf(e.stdout, "private cluster in %s: stopped (was pid %d)\n", before.DataDir, before.PID)
	}
	return nil
}
