package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// AppRole is the database role the server works as: it may insert and read
// job_chunks and job_events but never update or delete them, nor delete
// jobs (migrations/00005_append_only.sql).
const AppRole = "jobstream_app"

// AfterConnectApp is AfterConnect for the server's pools: it also switches
// the connection to AppRole (SET ROLE), so that whatever the server's own
// code does, it cannot rewrite the record, even when it connects as a
// superuser (the local postgres, the private cluster). Where the role is
// missing (migrated by a role that may not create roles) or not granted to
// the connecting role, the connection stays as it is; the append-only
// triggers still apply. A connection that SET ROLE can RESET ROLE: this
// guards against the application's mistakes, not against someone who can
// send it arbitrary SQL; for that, connect as a login role that is only a
// member of jobstream_app.
func AfterConnectApp(ctx context.Context, conn *pgx.Conn) error {
	if err := AfterConnect(ctx, conn); err != nil {
		return err
	}
	if _, err := dbsqlc.New().AppRoleUse(ctx, conn); err != nil {
		return fmt.Errorf("set role %s: %w", AppRole, err)
	}
	return nil
}
