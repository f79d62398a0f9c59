package pgsetup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATE codes EnsureDatabase and the probe branch on.
const (
	codeInvalidCatalogName = "3D000" // the database does not exist
	codeDuplicateDatabase  = "42P04"
	codeUniqueViolation    = "23505" // CREATE DATABASE raced another past its name check
)

// maintenanceDatabases are where CREATE DATABASE is run from, in order:
// template1 is there for servers whose postgres database was dropped.
var maintenanceDatabases = []string{"postgres", "template1"}

// EnsureDatabase creates the database named by url if it does not exist.
//
// It first connects to the database itself, so that a user without the
// right to create databases (a managed server) is fine as long as the
// database exists. Otherwise it connects to a maintenance database with the
// same credentials and runs CREATE DATABASE, owned by that user. Concurrent
// calls for the same database all succeed.
func EnsureDatabase(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("ensure database: %w", err)
	}
	name := cmp.Or(cfg.Database, cfg.User) // the server's default, like libpq's

	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		_ = conn.Close(ctx)
		return nil
	}
	if pgCode(err) != codeInvalidCatalogName {
		return fmt.Errorf("connect to database %q: %w", name, onceEach(err))
	}

	for _, maint := range maintenanceDatabases {
		mcfg := cfg.Copy()
		mcfg.Database = maint
		conn, err = pgx.ConnectConfig(ctx, mcfg)
		if err == nil || pgCode(err) != codeInvalidCatalogName {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("create database %q: connect to maintenance database: %w", name, onceEach(err))
	}
	defer func() { _ = conn.Close(ctx) }()

	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	switch pgCode(err) {
	case codeDuplicateDatabase, codeUniqueViolation:
		return nil // created meanwhile by another process
	}
	if err != nil {
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}

// onceEach drops repeated lines from a connection error. pgx lists every
// attempt on a line of its own, and with sslmode=prefer (the default) it
// tries each address twice, with TLS and without, so a refused connection
// was reported twice, word for word.
func onceEach(err error) error { return dedupError{err} }

type dedupError struct{ err error }

func (e dedupError) Unwrap() error { return e.err }

func (e dedupError) Error() string {
	lines := strings.Split(e.err.Error(), "\n")
	out := lines[:0]
	seen := make(map[string]bool, len(lines))
	for _, l := range lines {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// pgCode returns the SQLSTATE of a server error in err's chain, or "".
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
