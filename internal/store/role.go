package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3/database"

	"github.com/jobstream/jobstream/internal/store/dbsqlc"
	"github.com/jobstream/jobstream/migrations"
)

// AppRole is the database role the server works as: it may insert and read
// job_chunks and job_events but never update or delete them, nor delete
// jobs (migrations/00005_append_only.sql).
const AppRole = "jobstream_app"

// ServerRole is the login role serve's connections log in as: a member of
// AppRole and of nothing else, owning nothing, neither a superuser nor able
// to create roles (migrations/00041_server_role.sql). RESET ROLE on its
// connections gives back no more than AppRole's rights.
const ServerRole = "jobstream_server"

// AfterConnectApp is AfterConnect for the server's pools: it also switches
// the connection to AppRole (SET ROLE), so that the job_events rows it
// causes record db_role jobstream_app, and so that a pool that logged in
// as a more powerful role still works with AppRole's rights. It is not
// what keeps the record safe: a connection that SET ROLE can RESET ROLE
// and get its login role's rights back. serve therefore logs in as
// ServerRole, or a role checked like it (RoleInfo.ServingProblems), which
// has nothing beyond AppRole's rights to get back. Where AppRole is missing
// (migrated by a role that may not create roles) or not granted to the
// login role, the connection stays as it is.
func AfterConnectApp(ctx context.Context, conn *pgx.Conn) error {
	if err := AfterConnect(ctx, conn); err != nil {
		return err
	}
	if _, err := dbsqlc.New().AppRoleUse(ctx, conn); err != nil {
		return fmt.Errorf("set role %s: %w", AppRole, err)
	}
	return nil
}

// RoleInfo describes the role a connection logged in as (session_user),
// from InspectRole.
type RoleInfo struct {
	Role        string
	Superuser   bool
	CreateRole  bool
	CreateDB    bool
	Replication bool
	BypassRLS   bool
	// JobsExists: the jobs table exists (the database has been migrated).
	JobsExists bool
	// OwnsJobs: the role owns the jobs table or can SET ROLE to its owner.
	OwnsJobs bool
	// OwnsDatabase: the role owns the database or can SET ROLE to its
	// owner (who may drop the public schema with everything in it).
	OwnsDatabase bool
	// OwnsObjects: the role, or a role it can SET ROLE to, owns something
	// in this database or a shared object (a database, a tablespace).
	OwnsObjects bool
	// AppMember: the role is a member of AppRole.
	AppMember bool
	// OtherRoles are the roles it can SET ROLE to, besides itself and
	// AppRole.
	OtherRoles []string
}

// InspectRole describes the role conn logged in as.
func InspectRole(ctx context.Context, conn dbsqlc.DBTX) (RoleInfo, error) {
	r, err := dbsqlc.New().SessionRoleInspect(ctx, conn)
	if err != nil {
		return RoleInfo{}, fmt.Errorf("inspect login role: %w", err)
	}
	b := func(p *bool) bool { return p != nil && *p }
	info := RoleInfo{
		Superuser: b(r.Superuser), CreateRole: b(r.Createrole), CreateDB: b(r.Createdb),
		Replication: b(r.Replication), BypassRLS: b(r.Bypassrls), JobsExists: b(r.JobsExists),
		OwnsJobs: b(r.OwnsJobs), OwnsDatabase: b(r.OwnsDatabase), OwnsObjects: b(r.OwnsObjects),
		AppMember: b(r.AppMember), OtherRoles: r.OtherRoles,
	}
	if r.Role != nil {
		info.Role = *r.Role
	}
	return info, nil
}

// Owner reports whether the role can alter the schema and so the record:
// a superuser, a role with CREATEROLE (it can grant itself the owner's
// role), the owner of the jobs table, or, before the first migration, the
// owner of the database. serve migrates with such a role, and serves as
// another.
func (r RoleInfo) Owner() bool {
	return r.Superuser || r.CreateRole || r.OwnsJobs || (!r.JobsExists && r.OwnsDatabase)
}

// ServingProblems says why the role must not serve requests, or nothing
// when it may: it must be a member of AppRole and of nothing else, own
// nothing, and have none of the attributes that reach past AppRole's
// rights, so that a connection that runs RESET ROLE or SET ROLE has no more
// rights than AppRole.
func (r RoleInfo) ServingProblems() []string {
	if r.Superuser {
		return []string{"is a superuser"} // which says it all
	}
	var p []string
	add := func(bad bool, why string) {
		if bad {
			p = append(p, why)
		}
	}
	add(r.CreateRole, "has CREATEROLE")
	add(r.CreateDB, "has CREATEDB")
	add(r.Replication, "has REPLICATION")
	add(r.BypassRLS, "has BYPASSRLS")
	add(r.OwnsJobs, "owns the jobs table (or may SET ROLE to its owner)")
	add(r.OwnsDatabase, "owns the database (or may SET ROLE to its owner)")
	add(r.OwnsObjects && !r.OwnsJobs && !r.OwnsDatabase, "owns database objects (or may SET ROLE to a role that does)")
	if len(r.OtherRoles) > 0 {
		roles := r.OtherRoles
		more := ""
		if len(roles) > 5 {
			roles, more = roles[:5], fmt.Sprintf(" and %d more", len(r.OtherRoles)-5)
		}
		p = append(p, fmt.Sprintf("may SET ROLE to %s%s (it must be a member of %s only)", strings.Join(roles, ", "), more, AppRole))
	}
	add(!r.AppMember, "is not a member of "+AppRole)
	return p
}

// ServerPassword derives ServerRole's password from the owner's:
// base64url(HMAC-SHA256(ownerPassword, "jobstream_server")). Every node
// handed the same owner DSN derives the same password, so none of them
// locks the others out, and nobody who lacks the owner's password can
// compute it.
func ServerPassword(ownerPassword string) string {
	h := hmac.New(sha256.New, []byte(ownerPassword))
	h.Write([]byte(ServerRole))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// ServerPasswordSet sets ServerRole's password on the database behind conn,
// which must log in as a role allowed to alter ServerRole (a superuser, or
// one with CREATEROLE). The server receives only the SCRAM-SHA-256 secret,
// computed here, so the password never appears in its statement log.
func ServerPasswordSet(ctx context.Context, conn dbsqlc.DBTX, password string) error {
	if err := dbsqlc.New().ServerPasswordSet(ctx, conn, scramSecret(password)); err != nil {
		return fmt.Errorf("set the password of %s: %w", ServerRole, err)
	}
	return nil
}

// PendingMigrations returns the versions of the migrations embedded in this
// binary that the database behind pool has not applied, oldest first. It
// only reads goose's version table (AppRole may), so a role that cannot
// migrate can still tell that it should not serve; a database without the
// table has applied none.
func PendingMigrations(ctx context.Context, pool *pgxpool.Pool) ([]int64, error) {
	want, err := embeddedVersions()
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	applied, err := appliedVersions(ctx, db)
	if err != nil {
		return nil, err
	}
	var pending []int64
	for _, v := range want {
		if !applied[v] {
			pending = append(pending, v)
		}
	}
	return pending, nil
}

// appliedVersions reads goose's version table the way goose does (its own
// queries): the latest row of a version says whether it is applied.
func appliedVersions(ctx context.Context, db *sql.DB) (map[int64]bool, error) {
	st, err := database.NewStore(database.DialectPostgres, "goose_db_version")
	if err != nil {
		return nil, fmt.Errorf("migration state: %w", err)
	}
	ext, ok := st.(database.StoreExtender)
	if !ok {
		return nil, errors.New("migration state: goose cannot tell whether its table exists")
	}
	exists, err := ext.TableExists(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("migration state: %w", err)
	}
	applied := map[int64]bool{}
	if !exists {
		return applied, nil
	}
	rows, err := st.ListMigrations(ctx, db) // newest first
	if err != nil {
		return nil, fmt.Errorf("migration state: %w", err)
	}
	seen := map[int64]bool{}
	for _, r := range rows {
		if !seen[r.Version] {
			seen[r.Version] = true
			applied[r.Version] = r.IsApplied
		}
	}
	return applied, nil
}

// embeddedVersions are the versions of the embedded migrations (the digits
// before the first underscore of each file name), in order.
func embeddedVersions() ([]int64, error) {
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("embedded migrations: %w", err)
	}
	var out []int64
	for _, f := range files {
		num, _, _ := strings.Cut(f, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("embedded migration %s: no version number", f)
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}
