package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/config"
	"github.com/jobstream/jobstream/internal/pgsetup"
	"github.com/jobstream/jobstream/internal/store"
)

// Database is the connections a serve process answers requests with: the
// API's pool, the workers' pool and the LISTEN connection. All of them log
// in as a role fit to serve (store.RoleInfo.ServingProblems): a member of
// jobstream_app only, owning nothing, so that RESET ROLE or SET ROLE on
// any of them gives no more rights than jobstream_app. The owner's
// credentials, when serve is handed them, are used to migrate and then
// dropped.
type Database struct {
	// API is the request handlers' pool.
	API *pgxpool.Pool
	// Worker is the workers' and chunk writer's pool; nil with --role api.
	Worker *pgxpool.Pool
	// ConnectListener opens a LISTEN connection; nil with --poll-only.
	ConnectListener func(ctx context.Context) (*pgx.Conn, error)
	// Role is the role the connections log in as.
	Role string
}

// Close closes the pools.
func (db *Database) Close() {
	db.API.Close()
	if db.Worker != nil {
		db.Worker.Close()
	}
}

// Where the serving connection string came from (servingConn).
const (
	fromServerURL  = "JOBSTREAM_SERVER_DATABASE_URL"
	fromDerived    = "derived from DATABASE_URL"
	fromDatabaseIs = "DATABASE_URL"
)

// productionHint says how to run serve without the owner's credentials.
const productionHint = "run `jobstream migrate` with the owner's DATABASE_URL, and serve with " +
	"JOBSTREAM_SERVER_DATABASE_URL (--server-database-url) alone, the connection string of " +
	store.ServerRole + " or another login role that is a member of " + store.AppRole + " only (README.md, Production set-up)"

// OpenDatabase finds the database and opens the serving connections.
//
// Handed the owner's credentials (DATABASE_URL logs in as a superuser, a
// role with CREATEROLE, or the owner of the jobs table: store.RoleInfo.Owner),
// it migrates with them, then serves as cfg.ServerDatabaseURL when set, else
// as store.ServerRole on the same server and database, with a password
// derived from the owner's (store.ServerPassword) when the owner's DSN has
// one. Outside --dev it warns, once, that it was handed the owner's
// credentials. Handed another role's, or cfg.ServerDatabaseURL without
// DATABASE_URL, it migrates nothing: the schema must be at this binary's
// latest migration. Either way it refuses to serve as a role that could
// alter the record.
func OpenDatabase(ctx context.Context, cfg config.Serve, d Deps, log *slog.Logger) (*Database, error) {
	poolCfg, from, err := servingConn(ctx, cfg, d, log)
	if err != nil {
		return nil, err
	}
	poolCfg.MaxConns = int32(cfg.MaxConns)
	poolCfg.AfterConnect = store.AfterConnectApp
	apiCfg := poolCfg.Copy()
	apiCfg.ConnConfig.Tracer = d.APITracer
	api, err := pgxpool.NewWithConfig(ctx, apiCfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	db := &Database{API: api}
	fail := func(err error) (*Database, error) {
		db.Close()
		return nil, err
	}
	if db.Role, err = checkServing(ctx, api, from); err != nil {
		return fail(err)
	}

	if cfg.Role != config.RoleAPI {
		// The workers get a pool of their own: the chunk writer must never
		// queue for a connection behind request handlers. Measured with
		// 1,000 SEMOSS pollers on one shared pool of 20: 99% of acquires
		// waited, and a group commit took 0.5 s instead of a few ms.
		wCfg := poolCfg.Copy()
		wCfg.MaxConns = int32(cmp.Or(cfg.WorkerConns, config.DefaultWorkerConns))
		// Only hot-path operations run on this pool, each under the
		// store's HotOperationTimeout on the client side; the same bound
		// as the server's statement_timeout ends a statement the client
		// can no longer cancel (a half-open connection).
		wCfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(store.DefaultHotOperationTimeout.Milliseconds(), 10)
		if db.Worker, err = pgxpool.NewWithConfig(ctx, wCfg); err != nil {
			return fail(fmt.Errorf("connect: %w", err))
		}
	}

	if !cfg.PollOnly {
		lc := poolCfg.ConnConfig
		checked := true // the API pool's role, checked above
		if cfg.ListenerURL != "" {
			if lc, err = pgx.ParseConfig(cfg.ListenerURL); err != nil {
				return fail(fmt.Errorf("parse --listener-url: %w", err))
			}
			checked = false
		}
		db.ConnectListener = func(ctx context.Context) (*pgx.Conn, error) {
			conn, err := pgx.ConnectConfig(ctx, lc.Copy())
			if err != nil {
				return nil, err
			}
			if !checked {
				if _, err := checkRole(ctx, conn, "--listener-url"); err != nil {
					conn.Close(ctx)
					return nil, err
				}
			}
			if err := store.AfterConnectApp(ctx, conn); err != nil {
				conn.Close(ctx)
				return nil, err
			}
			return conn, nil
		}
		if !checked {
			// A role that must not serve is refused at start, not in the
			// listener's reconnect loop; a listener database that does not
			// answer yet is the listener's to retry.
			conn, err := db.ConnectListener(ctx)
			var re roleError
			if errors.As(err, &re) {
				return fail(err)
			}
			if err == nil {
				conn.Close(ctx)
			}
		}
	}
	return db, nil
}

// servingConn returns the configuration of the connections that serve,
// and where it came from, after migrating when handed the owner's
// credentials.
func servingConn(ctx context.Context, cfg config.Serve, d Deps, log *slog.Logger) (*pgxpool.Config, string, error) {
	serverURL := func() (*pgxpool.Config, string, error) {
		pc, err := pgxpool.ParseConfig(cfg.ServerDatabaseURL)
		if err != nil {
			return nil, "", fmt.Errorf("parse --server-database-url: %w", err)
		}
		return pc, fromServerURL, nil
	}
	if cfg.ServerDatabaseURL != "" && cfg.DatabaseURL == "" {
		log.Info("database " + pgsetup.Redact(cfg.ServerDatabaseURL) + ", because JOBSTREAM_SERVER_DATABASE_URL is set and DATABASE_URL is not; serve migrates nothing")
		return serverURL()
	}
	res, err := pgsetup.Resolve(ctx, pgsetup.Config{
		DatabaseURL: cfg.DatabaseURL,
		DataDir:     cfg.DataDir,
		Getenv:      d.Getenv,
		Logf:        func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) },
		Warnf:       func(format string, args ...any) { log.Warn(fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		return nil, "", err
	}
	ownerCfg, err := pgxpool.ParseConfig(res.URL)
	if err != nil {
		return nil, "", fmt.Errorf("parse database url: %w", err)
	}
	ownerCfg.MaxConns = 1
	ownerCfg.AfterConnect = store.AfterConnect
	owner, err := pgxpool.NewWithConfig(ctx, ownerCfg)
	if err != nil {
		return nil, "", fmt.Errorf("connect: %w", err)
	}
	defer owner.Close()
	info, err := store.InspectRole(ctx, owner)
	if err != nil {
		return nil, "", err
	}
	if !info.Owner() {
		if cfg.ServerDatabaseURL != "" {
			return serverURL()
		}
		pc, err := pgxpool.ParseConfig(res.URL)
		if err != nil {
			return nil, "", fmt.Errorf("parse database url: %w", err)
		}
		return pc, fromDatabaseIs, nil
	}

	serveAs := store.ServerRole
	if cfg.ServerDatabaseURL != "" {
		serveAs = "the role of JOBSTREAM_SERVER_DATABASE_URL"
	}
	msg := fmt.Sprintf("DATABASE_URL logs in as %s, which can alter the record (%s): serve migrates with it, then serves as %s",
		info.Role, ownerReason(info), serveAs)
	if cfg.Dev {
		log.Info(msg)
	} else {
		log.Warn(msg + "; this process still holds the owner's credentials. In production, " + productionHint)
	}
	if err := store.Migrate(ctx, owner); err != nil {
		return nil, "", err
	}
	if cfg.ServerDatabaseURL != "" {
		return serverURL()
	}
	pc, err := pgxpool.ParseConfig(res.URL)
	if err != nil {
		return nil, "", fmt.Errorf("parse database url: %w", err)
	}
	pc.ConnConfig.User = store.ServerRole
	password := ""
	if pc.ConnConfig.Password != "" {
		password = store.ServerPassword(pc.ConnConfig.Password)
	}
	pc.ConnConfig.Password = password
	if err := loginAsServer(ctx, owner, pc.ConnConfig, password); err != nil {
		return nil, "", fmt.Errorf("log in as %s (%s, on %s): %w; "+
			"create the role by migrating as a role with CREATEROLE, or set JOBSTREAM_SERVER_DATABASE_URL "+
			"(--server-database-url) to the connection string of a login role that is a member of %s only",
			store.ServerRole, fromDerived, pgsetup.Redact(res.URL), err, store.AppRole)
	}
	return pc, fromDerived, nil
}

// loginAsServer makes sure cc (store.ServerRole with the derived password)
// can log in. The password is set only when the server turns it away, so
// that nodes starting together do not all rewrite the role (two ALTER
// ROLEs at once may fail with "tuple concurrently updated"; the other
// node then set the same password).
func loginAsServer(ctx context.Context, owner *pgxpool.Pool, cc *pgx.ConnConfig, password string) error {
	try := func() error {
		conn, err := pgx.ConnectConfig(ctx, cc.Copy())
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	}
	err := try()
	if err == nil || password == "" || pgCode(err) != pgerrInvalidPassword {
		return err
	}
	if err := store.ServerPasswordSet(ctx, owner, password); err != nil && pgCode(err) != pgerrInternal {
		return err
	}
	return try()
}

// SQLSTATEs loginAsServer acts on.
const (
	pgerrInvalidPassword = "28P01"
	pgerrInternal        = "XX000" // tuple concurrently updated
)

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// roleError is a login role that must not serve.
type roleError struct{ msg string }

func (e roleError) Error() string { return e.msg }

// checkServing checks, on the API pool, that the pool's login role is fit
// to serve and that the database is at this binary's latest migration, and
// returns that role.
func checkServing(ctx context.Context, pool *pgxpool.Pool, from string) (string, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		if from == fromDerived {
			return "", err
		}
		return "", fmt.Errorf("connect with %s: %w", from, err)
	}
	defer conn.Release()
	role, err := checkRole(ctx, conn.Conn(), from)
	if err != nil {
		return "", err
	}
	pending, err := store.PendingMigrations(ctx, pool)
	if err != nil {
		return "", fmt.Errorf("read the migration state with %s: %w", from, err)
	}
	if len(pending) > 0 {
		vs := make([]string, len(pending))
		for i, v := range pending {
			vs[i] = fmt.Sprintf("%05d", v)
		}
		return "", fmt.Errorf("the database is not migrated to this version of jobstream (%d migration(s) pending: %s), "+
			"and %s is not the owner's, so serve does not migrate it: run `jobstream migrate` as the database owner "+
			"(DATABASE_URL of the owner), then start serve again", len(pending), strings.Join(vs, ", "), from)
	}
	return role, nil
}

// checkRole returns the role conn logged in as, or a roleError if it must
// not serve.
func checkRole(ctx context.Context, conn *pgx.Conn, from string) (string, error) {
	info, err := store.InspectRole(ctx, conn)
	if err != nil {
		return "", err
	}
	if p := info.ServingProblems(); len(p) > 0 {
		return "", roleError{fmt.Sprintf("%s logs in as %s, which must not serve requests: it %s. "+
			"The serving role must be a member of %s only and own nothing (like %s, created by the migrations); "+
			"to migrate and serve from one DATABASE_URL, make that the owner's; otherwise %s",
			from, info.Role, strings.Join(p, "; it "), store.AppRole, store.ServerRole, productionHint)}
	}
	return info.Role, nil
}

// ownerReason says what makes info's role an owner.
func ownerReason(info store.RoleInfo) string {
	switch {
	case info.Superuser:
		return "a superuser"
	case info.CreateRole:
		return "it has CREATEROLE"
	case info.OwnsJobs:
		return "it owns the jobs table"
	default:
		return "it owns the database"
	}
}
