package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/jobstream/jobstream/internal/config"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engineconfig"
	"github.com/jobstream/jobstream/internal/metrics"
	"github.com/jobstream/jobstream/internal/server"
)

const serveAbout = `Run jobstream: the HTTP API (native /v1 and SEMOSS /Monolith/api) and the
workers that call models, in one process (--role all), or only one of them.

The database is DATABASE_URL when set; otherwise the local PostgreSQL server
(default socket or 127.0.0.1:5432); otherwise, when the PostgreSQL server
binaries are installed, a private cluster that jobstream starts in its data
directory. The database is created if missing.

Requests are served as a role that cannot alter the record: a member of
jobstream_app only, owning nothing. When DATABASE_URL (or the database found)
logs in as the owner (a superuser, a role with CREATEROLE, or the owner of
the jobs table), serve migrates with it and then serves as jobstream_server,
or as --server-database-url when set, and warns (outside --dev) that it holds
the owner's credentials. In production, run 'jobstream migrate' as the owner
and serve with JOBSTREAM_SERVER_DATABASE_URL alone: serve then migrates
nothing, and refuses a database that is not at its latest migration.`

func cmdServe(ctx context.Context, e *env, args []string) error {
	var cfg config.Serve
	fs := newFlags(e, "serve", "[flags]", serveAbout)
	cfg.Flags(fs, e.getenv)
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 {
		return usagef("serve takes no arguments, got %q", pos)
	}
	if err := cfg.Validate(); err != nil {
		return usagef("%v; see 'jobstream serve --help'", err)
	}
	log := newLogger(e, cfg.LogLevel)
	engines, err := loadEngines(cfg.EnginesFile, e.getenv)
	if err != nil {
		return err
	}
	deps := server.Deps{Engines: engines, Getenv: e.getenv, Logger: log}
	if cfg.Role != config.RoleWorker {
		// Bind first: a port in use is found at once, not after finding,
		// starting and migrating the database.
		ln, err := net.Listen("tcp", cfg.ListenAddr())
		if err != nil {
			return fmt.Errorf("listen on %s: %w (is another jobstream serving there? choose another address with --addr)", cfg.ListenAddr(), err)
		}
		deps.Listener = ln
	}
	return server.Run(ctx, cfg, deps)
}

// loadEngines builds the engine registry: the engines file when given, else
// the built-in sim engine only.
func loadEngines(path string, getenv func(string) string) (*engine.Registry, error) {
	if path == "" {
		return engineconfig.Default(), nil
	}
	return engineconfig.LoadWithHooks(path, getenv, engineconfig.Hooks{
		OnFailure: func(engineID, errType string) {
			metrics.ProviderFailures.WithLabelValues(engineID, errType).Inc()
		},
	})
}

func newLogger(e *env, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(strings.ToUpper(level)))
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: l}))
}
