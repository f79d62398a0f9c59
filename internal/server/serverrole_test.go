package server_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"

	"github.com/jobstream/jobstream/internal/config"
	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/ledger"
	"github.com/jobstream/jobstream/internal/pgsetup"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// logs is a slog handler that keeps every record, rendered.
type logs struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logs) Enabled(context.Context, slog.Level) bool { return true }
func (h *logs) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r)
	h.mu.Unlock()
	return nil
}
func (h *logs) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logs) WithGroup(string) slog.Handler      { return h }

// at returns the records at level, as "message attr=value ...".
func (h *logs) at(level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recs {
		if r.Level != level {
			continue
		}
		s := r.Message
		r.Attrs(func(a slog.Attr) bool { s += " " + a.String(); return true })
		out = append(out, s)
	}
	return out
}

func (h *logs) all() string {
	var b strings.Builder
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		for _, m := range h.at(l) {
			b.WriteString(m + "\n")
		}
	}
	return b.String()
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// serverDSN is db logging in as store.ServerRole, as serve derives it.
func serverDSN(t *testing.T, db string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(db)
	if err != nil {
		t.Fatal(err)
	}
	password := ""
	if cfg.Password != "" {
		// A server that checks passwords: set the derived one, as serve
		// does when it is turned away.
		password = store.ServerPassword(cfg.Password)
		if err := store.ServerPasswordSet(context.Background(), dbtest.Pool(t), password); err != nil {
			t.Fatal(err)
		}
	}
	return testserver.WithUser(db, store.ServerRole, password)
}

// openDatabase opens the serving connections as serve does.
func openDatabase(t *testing.T, cfg config.Serve, h *logs) (*server.Database, error) {
	t.Helper()
	if h == nil {
		h = &logs{}
	}
	db, err := server.OpenDatabase(context.Background(), cfg, server.Deps{}, slog.New(h))
	if err == nil {
		t.Cleanup(db.Close)
	}
	return db, err
}

// TestServingConnectionsCannotBecomeOwner is the auditor's attack: on a
// connection of the server's own (the API pool, the workers' pool, the
// LISTEN connection, as serve opens them from the owner's DATABASE_URL),
// RESET ROLE and then try to switch off the triggers, rewrite or remove
// chunks, become the superuser, create roles, change the server's
// configuration or its logging. Every attempt is refused, and the login
// role is no superuser. Before the server logged in as jobstream_server,
// its connections logged in as the owner (here the superuser) and only
// SET ROLE jobstream_app, so RESET ROLE gave all of that back.
func TestServingConnectionsCannotBecomeOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testserver.Database(t)
	owner := testserver.Pool(t, db, 2)
	var ownerRole string
	if err := owner.QueryRow(ctx, `SELECT session_user`).Scan(&ownerRole); err != nil {
		t.Fatal(err)
	}
	// A job with a chunk the attacker would like to rewrite.
	lease := testserver.RunningJob(t, owner, testserver.Tenant(t), "w1")
	if _, err := store.New(owner).WriteBatch(ctx, "w1", []store.NewChunk{testserver.Content(lease, 0, "original")}, nil); err != nil {
		t.Fatal(err)
	}

	h := &logs{}
	served, err := openDatabase(t, testserver.ServeConfig(t, db), h)
	if err != nil {
		t.Fatalf("OpenDatabase: %v\n%s", err, h.all())
	}
	if served.Role != store.ServerRole {
		t.Errorf("serving role %q, want %s", served.Role, store.ServerRole)
	}
	conns := map[string]*pgx.Conn{}
	for name, pool := range map[string]*pgxpool.Pool{"API pool": served.API, "worker pool": served.Worker} {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns[name] = c.Hijack() // never back to the pool after this
	}
	lc, err := served.ConnectListener(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conns["LISTEN connection"] = lc

	attackRole := "jobstream_attack_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	ownerIdent := pgx.Identifier{ownerRole}.Sanitize()
	// Statements run in a transaction that is rolled back, each in a
	// savepoint: should one succeed (as on a superuser's connection), it
	// changes nothing on the shared test server.
	inTx := []string{
		`SET session_replication_role = replica`,
		`ALTER TABLE job_chunks DISABLE TRIGGER ALL`,
		`DELETE FROM job_chunks WHERE job_id = $1`,
		`UPDATE job_chunks SET data = '{"content":"forged"}' WHERE job_id = $1`,
		`TRUNCATE job_chunks`,
		`DROP TABLE job_events`,
		`ALTER TABLE job_chunks OWNER TO ` + store.ServerRole,
		`SET ROLE ` + ownerIdent,
		`SET SESSION AUTHORIZATION ` + ownerIdent,
		`CREATE ROLE ` + attackRole,
		`ALTER ROLE ` + store.ServerRole + ` SUPERUSER`,
		`GRANT ` + ownerIdent + ` TO ` + store.ServerRole,
		`SET log_statement = 'none'`,
		`SET log_min_messages = 'panic'`,
		`LOAD 'pgaudit'`,
		`SELECT pg_read_file('PG_VERSION')`,
		`COPY (SELECT 1) TO PROGRAM 'true'`,
		// The transparency log (review finding 1): a forged job leaf for
		// the running job, a stray tree hash far ahead or at the next
		// index, a checkpoint of a huge tree. The sequencer writes them
		// only through functions that judge for themselves.
		`INSERT INTO log_leaves (kind, leaf, job_id) VALUES ('job', '\x0100000003'::bytea || convert_to('job', 'UTF8') || '\xdeadbeef'::bytea, $1)`,
		`INSERT INTO log_hashes VALUES (999999, sha256('x'))`,
		`INSERT INTO log_hashes SELECT coalesce(max(idx) + 1, 0), sha256('x') FROM log_hashes`,
		`INSERT INTO log_checkpoints VALUES (1000000, sha256('x'), 'forged')`,
	}
	for name, conn := range conns {
		t.Run(name, func(t *testing.T) {
			defer conn.Close(ctx)
			var current, session string
			if err := conn.QueryRow(ctx, `SELECT current_user, session_user`).Scan(&current, &session); err != nil {
				t.Fatal(err)
			}
			// AfterConnectApp still works as jobstream_app (db_role of
			// the events it causes), on top of the login role.
			if current != store.AppRole || session != store.ServerRole {
				t.Errorf("works as %s, logged in as %s; want %s as %s", current, session, store.AppRole, store.ServerRole)
			}
			if _, err := conn.Exec(ctx, `RESET ROLE`); err != nil {
				t.Fatal(err)
			}
			var super bool
			if err := conn.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = session_user`).Scan(&super); err != nil {
				t.Fatal(err)
			}
			if super {
				t.Errorf("the login role %s is a superuser", session)
			}
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			for _, stmt := range inTx {
				if _, err := tx.Exec(ctx, `SAVEPOINT attack`); err != nil {
					t.Fatal(err)
				}
				var args []any
				if strings.Contains(stmt, "$1") {
					args = append(args, lease.JobID)
				}
				_, err := tx.Exec(ctx, stmt, args...)
				if sqlState(err) != "42501" {
					t.Errorf("after RESET ROLE, %s: %v; want it refused (insufficient_privilege)", stmt, err)
				}
				if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT attack`); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			// Outside a transaction (ALTER SYSTEM may not run in one). A
			// parameter that does not exist: a superuser gets "unrecognized
			// configuration parameter", and nothing is written.
			if _, err := conn.Exec(ctx, `ALTER SYSTEM SET jobstream_attack_setting = 1`); sqlState(err) != "42501" {
				t.Errorf("after RESET ROLE, ALTER SYSTEM: %v; want it refused (insufficient_privilege)", err)
			}
			// SET ROLE goes back to jobstream_app, and nowhere else.
			if _, err := conn.Exec(ctx, `SET ROLE `+store.AppRole); err != nil {
				t.Errorf("SET ROLE %s: %v", store.AppRole, err)
			}
		})
	}

	// The record is as it was.
	var data string
	if err := owner.QueryRow(ctx, `SELECT data::text FROM job_chunks WHERE job_id = $1 AND seq = 0`, lease.JobID).Scan(&data); err != nil || !strings.Contains(data, "original") {
		t.Errorf("chunk 0 = %q, %v; want the original", data, err)
	}
	var disabled int
	if err := owner.QueryRow(ctx, `SELECT count(*) FROM pg_trigger WHERE tgrelid = 'job_chunks'::regclass AND tgenabled = 'D'`).Scan(&disabled); err != nil || disabled != 0 {
		t.Errorf("%d disabled triggers on job_chunks (%v)", disabled, err)
	}
}

// TestServeAsNonOwnerDoesNotMigrate: handed a DATABASE_URL that is not the
// owner's (or only JOBSTREAM_SERVER_DATABASE_URL), serve migrates nothing:
// on a database that is not migrated it stops with an error that says to
// run `jobstream migrate` as the owner, and leaves the database empty; on a
// migrated one it serves as that role, without the owner's warning.
func TestServeAsNonOwnerDoesNotMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	engines := engine.NewRegistry()
	engines.Register(sim.Info(), sim.New())

	empty := testserver.EmptyDatabase(t)
	asServer := serverDSN(t, empty)
	for name, set := range map[string]func(*config.Serve){
		"DATABASE_URL":                  func(c *config.Serve) { c.DatabaseURL = asServer },
		"JOBSTREAM_SERVER_DATABASE_URL": func(c *config.Serve) { c.DatabaseURL, c.ServerDatabaseURL = "", asServer },
	} {
		cfg := testserver.ServeConfig(t, empty)
		set(&cfg)
		err := server.Run(ctx, cfg, server.Deps{Engines: engines, Logger: slog.New(&logs{})})
		if err == nil || !strings.Contains(err.Error(), "run `jobstream migrate` as the database owner") ||
			!strings.Contains(err.Error(), "not migrated") {
			t.Errorf("%s as %s on an empty database: Run = %v; want the error that says to migrate as the owner", name, store.ServerRole, err)
		}
	}
	var untouched bool
	if err := testserver.Pool(t, empty, 1).QueryRow(ctx,
		`SELECT to_regclass('goose_db_version') IS NULL AND to_regclass('jobs') IS NULL`).Scan(&untouched); err != nil || !untouched {
		t.Errorf("serve as %s changed the empty database (%v)", store.ServerRole, err)
	}

	migrated := testserver.Database(t)
	cfg := testserver.ServeConfig(t, migrated, "--dev=false")
	cfg.DatabaseURL = serverDSN(t, migrated)
	h := &logs{}
	served, err := openDatabase(t, cfg, h)
	if err != nil {
		t.Fatalf("OpenDatabase as %s on a migrated database: %v", store.ServerRole, err)
	}
	if served.Role != store.ServerRole {
		t.Errorf("serving role %q, want %s", served.Role, store.ServerRole)
	}
	if w := h.at(slog.LevelWarn); len(w) != 0 {
		t.Errorf("serving without the owner's credentials warned: %q", w)
	}
}

// TestServeRefusesRolesThatCouldAlterTheRecord: serve checks every role it
// is told to serve as, and refuses one that could alter the record after a
// RESET ROLE: the superuser, a role that may SET ROLE to the owner or to a
// predefined role that writes the server's files, a role that is not a
// member of jobstream_app; and a --listener-url of such a role.
func TestServeRefusesRolesThatCouldAlterTheRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testserver.Database(t)
	admin := testserver.Pool(t, db, 1)
	var ownerRole string
	if err := admin.QueryRow(ctx, `SELECT session_user`).Scan(&ownerRole); err != nil {
		t.Fatal(err)
	}
	role := func(grants ...string) string {
		name := "jobstream_test_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
		if _, err := admin.Exec(ctx, `CREATE ROLE `+name+` LOGIN`); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := admin.Exec(context.Background(), `DROP ROLE `+name); err != nil {
				t.Errorf("drop role %s: %v", name, err)
			}
		})
		for _, g := range grants {
			if _, err := admin.Exec(ctx, `GRANT `+pgx.Identifier{g}.Sanitize()+` TO `+name); err != nil {
				t.Fatal(err)
			}
		}
		return testserver.WithUser(db, name, "")
	}

	for _, tc := range []struct {
		name, dsn string
		want      []string
	}{
		{"superuser", db, []string{"is a superuser"}},
		{"member of the owner", role(store.AppRole, ownerRole), []string{"owns the jobs table", "may SET ROLE to", ownerRole}},
		{"member of pg_write_server_files", role(store.AppRole, "pg_write_server_files"), []string{"may SET ROLE to pg_write_server_files"}},
		{"not a member of jobstream_app", role(), []string{"is not a member of " + store.AppRole}},
	} {
		cfg := testserver.ServeConfig(t, db)
		cfg.DatabaseURL, cfg.ServerDatabaseURL = "", tc.dsn
		_, err := openDatabase(t, cfg, nil)
		if err == nil || !strings.Contains(err.Error(), "must not serve requests") {
			t.Errorf("%s as JOBSTREAM_SERVER_DATABASE_URL: %v; want it refused", tc.name, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s as JOBSTREAM_SERVER_DATABASE_URL: %v; want it to say %q", tc.name, err, w)
			}
		}
	}

	cfg := testserver.ServeConfig(t, db, "--listener-url", db)
	_, err := openDatabase(t, cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "--listener-url logs in as "+ownerRole) {
		t.Errorf("the owner as --listener-url: %v; want it refused", err)
	}
}

// TestServeWithOwnerPassword: handed the DATABASE_URL of an owner that is
// no superuser (a role with CREATEROLE that owns the database) and that
// carries its password as ?password=, serve migrates with it, then serves
// as jobstream_server; it warns exactly once that it holds the owner's
// credentials, and no log line shows the password.
func TestServeWithOwnerPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := dbtest.Pool(t)
	owner := "jobstream_test_owner_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	password := "pw-" + uuid.NewString()
	if _, err := admin.Exec(ctx, `CREATE ROLE `+owner+` LOGIN CREATEROLE PASSWORD '`+password+`'`); err != nil {
		t.Fatal(err)
	}
	// Registered before the database's cleanup, so it runs after it.
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), `DROP ROLE `+owner); err != nil {
			t.Errorf("drop role %s: %v", owner, err)
		}
	})
	empty := testserver.EmptyDatabase(t)
	dbName := mustParse(t, empty).Database
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{dbName}.Sanitize()+` OWNER TO `+owner); err != nil {
		t.Fatal(err)
	}
	dsn := testserver.WithUser(empty, owner, "")
	if strings.Contains(dsn, "?") {
		dsn += "&password=" + password
	} else {
		dsn += "?password=" + password
	}

	h := &logs{}
	served, err := openDatabase(t, testserver.ServeConfig(t, dsn, "--dev=false"), h)
	if err != nil {
		t.Fatalf("OpenDatabase with a CREATEROLE owner: %v\n%s", err, h.all())
	}
	if served.Role != store.ServerRole {
		t.Errorf("serving role %q, want %s", served.Role, store.ServerRole)
	}
	if pending, err := store.PendingMigrations(ctx, served.API); err != nil || len(pending) != 0 {
		t.Errorf("pending migrations after serve: %v, %v", pending, err)
	}
	warns := h.at(slog.LevelWarn)
	if len(warns) != 1 || !strings.Contains(warns[0], owner) || !strings.Contains(warns[0], "JOBSTREAM_SERVER_DATABASE_URL") ||
		!strings.Contains(warns[0], "jobstream migrate") {
		t.Errorf("warnings %q; want one that names %s and says how to set up production", warns, owner)
	}
	all := h.all()
	if strings.Contains(all, password) {
		t.Errorf("the log shows the owner's password:\n%s", all)
	}
	if !strings.Contains(all, "password=xxxxx") {
		t.Errorf("the log does not show which database (password hidden):\n%s", all)
	}
}

func mustParse(t *testing.T, dsn string) *pgx.ConnConfig {
	t.Helper()
	c, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestServeOnAServerThatChecksPasswords: on a server that checks passwords
// (scram-sha-256, like the Docker image's), serve handed the owner's DSN
// with its password sets jobstream_server's password, derived from the
// owner's, when the server turns the role away, and serves as it; another
// node with the same DSN logs in with the same password and rewrites
// nothing. An owner that may not alter roles cannot set it: serve stops
// with an error that says to set JOBSTREAM_SERVER_DATABASE_URL, and serves
// once it is set. No log line shows a password.
func TestServeOnAServerThatChecksPasswords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pg")
	res, err := pgsetup.ResolvePrivate(ctx, pgsetup.Config{DataDir: dir})
	if err != nil && strings.Contains(err.Error(), "no PostgreSQL server binaries") {
		t.Skipf("cannot run a PostgreSQL server of its own here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := pgsetup.StopCluster(context.Background(), pgsetup.Config{DataDir: dir}); err != nil {
			t.Errorf("stop private cluster: %v", err)
		}
	})
	superuser := mustParse(t, res.URL).User
	ownerPassword := "owner-" + uuid.NewString()
	conn, err := pgx.Connect(ctx, res.URL)
	if err != nil {
		t.Fatal(err)
	}
	var hba string
	_, err = conn.Exec(ctx, `ALTER ROLE `+pgx.Identifier{superuser}.Sanitize()+` PASSWORD '`+ownerPassword+`'`)
	if err == nil {
		err = conn.QueryRow(ctx, `SHOW hba_file`).Scan(&hba)
	}
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Passwords are checked from the restart on.
	if err := res.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hba, []byte("local all all scram-sha-256\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// pgsetup starts the cluster, then cannot get in without a password.
	if _, err := pgsetup.StartCluster(ctx, pgsetup.Config{DataDir: dir}); sqlState(err) != "28P01" {
		t.Fatalf("restarted cluster: %v; want it to ask for a password", err)
	}
	withPassword := func(dsn, password string) string { return dsn + "&password=" + password }
	ownerDSN := withPassword(res.URL, ownerPassword)
	serverPassword := store.ServerPassword(ownerPassword)
	secret := func() string {
		t.Helper()
		var s string
		if err := testserver.Pool(t, ownerDSN, 1).QueryRow(ctx, `SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = $1`, store.ServerRole).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	h := &logs{}
	served, err := openDatabase(t, testserver.ServeConfig(t, ownerDSN, "--dev=false"), h)
	if err != nil {
		t.Fatalf("OpenDatabase with the owner's password: %v\n%s", err, h.all())
	}
	if served.Role != store.ServerRole {
		t.Errorf("serving role %q, want %s", served.Role, store.ServerRole)
	}
	first := secret()
	if !strings.HasPrefix(first, "SCRAM-SHA-256$") {
		t.Errorf("%s's password is stored as %q, want a SCRAM-SHA-256 secret", store.ServerRole, first)
	}
	asServer := testserver.WithUser(res.URL, store.ServerRole, "")
	if c, err := pgx.Connect(ctx, withPassword(asServer, serverPassword)); err != nil {
		t.Errorf("log in as %s with the derived password: %v", store.ServerRole, err)
	} else {
		c.Close(ctx)
	}
	if _, err := pgx.Connect(ctx, withPassword(asServer, "wrong")); sqlState(err) != "28P01" {
		t.Errorf("log in as %s with another password: %v; want it refused", store.ServerRole, err)
	}

	// Another node, the same owner DSN: it logs in at once.
	if _, err := openDatabase(t, testserver.ServeConfig(t, ownerDSN, "--dev=false"), h); err != nil {
		t.Fatalf("second OpenDatabase: %v", err)
	}
	if again := secret(); again != first {
		t.Errorf("the second node rewrote %s's password", store.ServerRole)
	}

	// An owner that may not alter roles: its database, its password.
	plain, plainPassword := "plain_owner", "plain-"+uuid.NewString()
	admin := testserver.Pool(t, ownerDSN, 1)
	for _, stmt := range []string{
		`CREATE ROLE ` + plain + ` LOGIN PASSWORD '` + plainPassword + `'`,
		`CREATE DATABASE plain OWNER ` + plain,
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	plainDSN := withPassword(testserver.WithDatabase(testserver.WithUser(res.URL, plain, ""), "plain"), plainPassword)
	_, err = openDatabase(t, testserver.ServeConfig(t, plainDSN, "--dev=false"), h)
	if err == nil || !strings.Contains(err.Error(), "log in as "+store.ServerRole) || !strings.Contains(err.Error(), "JOBSTREAM_SERVER_DATABASE_URL") {
		t.Errorf("an owner without CREATEROLE: %v; want the error that says to set JOBSTREAM_SERVER_DATABASE_URL", err)
	}
	if again := secret(); again != first {
		t.Errorf("an owner without CREATEROLE changed %s's password", store.ServerRole)
	}
	cfg := testserver.ServeConfig(t, plainDSN, "--dev=false")
	cfg.ServerDatabaseURL = withPassword(testserver.WithDatabase(asServer, "plain"), serverPassword)
	if served, err := openDatabase(t, cfg, h); err != nil || served.Role != store.ServerRole {
		t.Errorf("the same owner with JOBSTREAM_SERVER_DATABASE_URL: %v", err)
	}

	for _, secret := range []string{ownerPassword, serverPassword, plainPassword} {
		if strings.Contains(h.all(), secret) {
			t.Errorf("the log shows a password:\n%s", h.all())
		}
	}
}

// TestSequencerAsServerLogin: the sequencer appends, numbers, hashes and
// signs on the pool serve opens (logged in as jobstream_server, working as
// jobstream_app), with no INSERT on any log table: only through the
// functions that judge what they write.
func TestSequencerAsServerLogin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testserver.Database(t)
	owner := testserver.Pool(t, db, 2)
	lease := testserver.RunningJob(t, owner, testserver.Tenant(t), "w1")
	if _, err := store.New(owner).WriteBatch(ctx, "w1", []store.NewChunk{testserver.FinishChunk(lease, 0, "stop")},
		[]store.Finish{{Lease: lease, Status: store.StatusCompleted, FinishReason: "stop"}}); err != nil {
		t.Fatal(err)
	}
	served, err := openDatabase(t, testserver.ServeConfig(t, db), nil)
	if err != nil {
		t.Fatal(err)
	}
	var session string
	if err := served.API.QueryRow(ctx, `SELECT session_user`).Scan(&session); err != nil || session != store.ServerRole {
		t.Fatalf("logged in as %q (%v), want %s", session, err, store.ServerRole)
	}
	skey, _, err := ledger.GenerateKey("test.example/jobstream")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ledger.NewSequencer(store.New(served.API), ledger.Config{Signer: signer}).Step(ctx)
	if err != nil || !s.Locked || s.Appended != 1 || s.Size < 1 || s.Checkpoint == nil {
		t.Fatalf("step as %s: %+v %v; want the job appended and a checkpoint", store.ServerRole, s, err)
	}
}
