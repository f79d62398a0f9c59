package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// holdAttacks tries, as the server's role on db, every way past the hold
// functions the auditor tried or could: writing job_holds directly, and
// executing the operator functions and their shared bodies. Each must be
// refused with permission denied, and the operator's hold on job must stay.
func holdAttacks(t *testing.T, exec func(ctx context.Context, sql string, args ...any) error, job uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	for _, stmt := range []string{
		`DELETE FROM job_holds`,
		`DELETE FROM job_holds WHERE job_id = $1`,
		`UPDATE job_holds SET authority = 'tenant' WHERE job_id = $1`,
		`INSERT INTO job_holds (job_id, reason, held_by, authority) VALUES ($1, 'x', 'x', 'operator')
		 ON CONFLICT (job_id) DO UPDATE SET authority = 'tenant'`,
		`TRUNCATE job_holds`,
		`SELECT jobstream_hold_lift_operator($1, 'attacker')`,
		`SELECT jobstream_hold_place_operator($1, 'x', 'attacker')`,
		`SELECT jobstream_hold_lift($1, NULL, 'attacker', 'operator')`,
		`SELECT jobstream_hold_place($1, NULL, 'x', 'attacker', 'operator')`,
	} {
		args := []any{job}
		if !strings.Contains(stmt, "$1") {
			args = nil
		}
		err := exec(ctx, stmt, args...)
		if sqlState(err) != "42501" || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s as the server's role: %v, want permission denied", strings.Join(strings.Fields(stmt), " "), err)
		}
	}
	// The tenant function without a tenant does not mean "any tenant".
	if err := exec(ctx, `SELECT jobstream_hold_lift_tenant($1, NULL, 'attacker')`, job); err == nil {
		t.Error("jobstream_hold_lift_tenant with a NULL tenant succeeded")
	}
	// With the job's own tenant: refused, the operator named.
	err := exec(ctx, `SELECT jobstream_hold_lift_tenant($1, 'acme', 'attacker')`, job)
	if sqlState(err) != "JS403" || !strings.Contains(err.Error(), "legal hold placed by jane@legal") {
		t.Errorf("jobstream_hold_lift_tenant of an operator's hold: %v, want JS403 naming jane@legal", err)
	}
}

// execFunc adapts a pool's or connection's Exec to holdAttacks.
func execFunc[T any](exec func(ctx context.Context, sql string, args ...any) (T, error)) func(ctx context.Context, sql string, args ...any) error {
	return func(ctx context.Context, sql string, args ...any) error {
		_, err := exec(ctx, sql, args...)
		return err
	}
}

// TestServerRoleCannotLiftOperatorHolds is the auditor's attack: the
// server's role (SET ROLE on a superuser's connection, as the server runs
// locally, and a login role that is only a member of jobstream_app) tries
// to lift a legal hold an operator placed, by the tenant function and
// around it. Every way is refused and the hold stays, so a retention pass
// keeps the job.
func TestServerRoleCannotLiftOperatorHolds(t *testing.T) {
	t.Parallel()
	url := testserver.Database(t)
	owner := testserver.Pool(t, url, 2)
	app := appPool(t, url)
	ctx := context.Background()
	st := store.New(owner)
	job := mustSubmit(t, st, store.SubmitParams{Tenant: "acme"})
	if _, err := st.HoldPlaceOperator(ctx, job.ID, "case 9", "jane@legal"); err != nil {
		t.Fatal(err)
	}

	holdAttacks(t, execFunc(app.Exec), job.ID)
	_, err := store.New(app).HoldLiftTenant(ctx, "acme", job.ID, "api_key:x")
	var oe *store.OperatorHoldError
	if !errors.As(err, &oe) || oe.HeldBy != "jane@legal" {
		t.Errorf("HoldLiftTenant of an operator's hold = %v, want an OperatorHoldError naming jane@legal", err)
	}

	t.Run("LoginRole", func(t *testing.T) {
		// A login role that is only a member of jobstream_app: it cannot
		// RESET ROLE its way out, as a superuser's connection could.
		role := "jobstream_test_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
		if _, err := owner.Exec(ctx, `CREATE ROLE `+role+` LOGIN IN ROLE jobstream_app`); err != nil {
			t.Skipf("cannot create a login role: %v", err)
		}
		t.Cleanup(func() {
			if _, err := owner.Exec(context.Background(), `DROP ROLE `+role); err != nil {
				t.Errorf("drop role %s: %v", role, err)
			}
		})
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		cfg.User, cfg.Password = role, ""
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Skipf("cannot log in as %s (the server may want a password): %v", role, err)
		}
		defer conn.Close(ctx)
		var super bool
		if err := conn.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil || super {
			t.Fatalf("login role superuser = %v (%v)", super, err)
		}
		holdAttacks(t, execFunc(conn.Exec), job.ID)
		if _, err := conn.Exec(ctx, `SET ROLE postgres`); err == nil {
			t.Error("the login role could SET ROLE postgres")
		}
	})

	holds, err := st.HoldList(ctx, "acme")
	if err != nil || len(holds) != 1 || holds[0].Authority != store.HoldOperator || holds[0].HeldBy != "jane@legal" || holds[0].Reason != "case 9" {
		t.Fatalf("holds after the attacks: %+v (%v), want jane@legal's operator hold unchanged", holds, err)
	}
	var lifted int
	if err := owner.QueryRow(ctx, `SELECT count(*) FROM job_events WHERE job_id = $1 AND event = 'hold_lifted'`, job.ID).Scan(&lifted); err != nil || lifted != 0 {
		t.Errorf("%d hold_lifted events (%v), want none", lifted, err)
	}
}

// TestHoldAuthority: a tenant places and lifts its own holds; an operator's
// hold over a tenant's takes it over, so the tenant can no longer lift it;
// a tenant's request on an operator's hold changes nothing; an operator
// lifts any hold. The server's role does all the tenant's part.
func TestHoldAuthority(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	owner := dbtest.Pool(t)
	op, tn := store.New(owner), store.New(appPool(t, url))
	ctx := context.Background()
	tenant := "t-" + uuid.NewString()
	job := mustSubmit(t, op, store.SubmitParams{Tenant: tenant})

	h, err := tn.HoldPlaceTenant(ctx, tenant, job.ID, "mine", "api_key:k1")
	if err != nil || h.Authority != store.HoldTenant || h.HeldBy != "api_key:k1" || h.Reason != "mine" {
		t.Fatalf("tenant hold = %+v, %v", h, err)
	}
	if _, err := tn.HoldPlaceTenant(ctx, "other-"+tenant, job.ID, "", "api_key:k9"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("hold of another tenant's job = %v, want ErrNotFound", err)
	}
	if _, err := tn.HoldLiftTenant(ctx, "other-"+tenant, job.ID, "api_key:k9"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("lift of another tenant's hold = %v, want ErrNotFound", err)
	}
	if h, err = tn.HoldLiftTenant(ctx, tenant, job.ID, "api_key:k2"); err != nil || h.Reason != "mine" {
		t.Fatalf("tenant lifts its own hold = %+v, %v", h, err)
	}
	if _, err := tn.HoldLiftTenant(ctx, tenant, job.ID, "api_key:k2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("lift of no hold = %v, want ErrNotFound", err)
	}

	// An operator takes a tenant's hold over.
	if _, err := tn.HoldPlaceTenant(ctx, tenant, job.ID, "mine", "api_key:k1"); err != nil {
		t.Fatal(err)
	}
	h, err = op.HoldPlaceOperator(ctx, job.ID, "", "jane@legal")
	if err != nil || h.Authority != store.HoldOperator || h.HeldBy != "jane@legal" || h.Reason != "mine" {
		t.Fatalf("operator hold over the tenant's = %+v, %v", h, err)
	}
	// The tenant's request changes nothing, and answers the operator's hold.
	if h, err = tn.HoldPlaceTenant(ctx, tenant, job.ID, "tenant's reason", "api_key:k1"); err != nil || h.Authority != store.HoldOperator || h.HeldBy != "jane@legal" || h.Reason != "mine" {
		t.Fatalf("tenant hold over the operator's = %+v, %v", h, err)
	}
	_, err = tn.HoldLiftTenant(ctx, tenant, job.ID, "api_key:k1")
	if !errors.Is(err, store.ErrOperatorHold) || err.Error() != "held by an operator (legal hold placed by jane@legal); only an operator can lift it" {
		t.Fatalf("tenant lift of the operator's hold = %v", err)
	}
	// A second operator renews it: the first stays the holder.
	if h, err = op.HoldPlaceOperator(ctx, job.ID, "case 9", "bob@legal"); err != nil || h.HeldBy != "jane@legal" || h.Reason != "case 9" {
		t.Fatalf("second operator hold = %+v, %v", h, err)
	}
	if h, err = op.HoldLiftOperator(ctx, job.ID, "bob@legal"); err != nil || h.HeldBy != "jane@legal" {
		t.Fatalf("operator lift = %+v, %v", h, err)
	}
	if _, err := op.HoldLiftOperator(ctx, job.ID, "bob@legal"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("operator lift of no hold = %v, want ErrNotFound", err)
	}
	// An operator also lifts a tenant's hold.
	if _, err := tn.HoldPlaceTenant(ctx, tenant, job.ID, "", "api_key:k1"); err != nil {
		t.Fatal(err)
	}
	if h, err = op.HoldLiftOperator(ctx, job.ID, "bob@legal"); err != nil || h.Authority != store.HoldTenant {
		t.Fatalf("operator lift of a tenant's hold = %+v, %v", h, err)
	}
	if _, err := op.HoldPlaceOperator(ctx, uuid.New(), "", "bob@legal"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("operator hold of no job = %v, want ErrNotFound", err)
	}
}

type holdEvent struct {
	Event, Actor, Reason string
	Detail               map[string]any
}

func (e holdEvent) String() string {
	return fmt.Sprintf("%s by %s (%s) authority=%v direct=%v previous=%v", e.Event, e.Actor, e.Reason, e.Detail["authority"], e.Detail["direct"] == true, e.Detail["previous"] != nil)
}

func holdEvents(t *testing.T, db *pgxpool.Pool, job uuid.UUID) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), `
		SELECT event, actor, coalesce(reason, ''), coalesce(detail, '{}')::text FROM job_events
		WHERE job_id = $1 AND event LIKE 'hold%' ORDER BY id`, job)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var e holdEvent
		var detail string
		if err := rows.Scan(&e.Event, &e.Actor, &e.Reason, &detail); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
			t.Fatal(err)
		}
		out = append(out, e.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHoldEvents: every hold placed, taken over or lifted is in the job's
// audit trail once, with its actor, reason and authority, written by the
// triggers on job_holds: also when the owner changes the table with plain
// SQL (actor db_role:<role>, direct), which cannot TRUNCATE it.
func TestHoldEvents(t *testing.T) {
	t.Parallel()
	owner := dbtest.Pool(t)
	op, tn := store.New(owner), store.New(appPool(t, dbtest.URL(t)))
	ctx := context.Background()
	tenant := "t-" + uuid.NewString()
	job := mustSubmit(t, op, store.SubmitParams{Tenant: tenant})
	var role string
	if err := owner.QueryRow(ctx, `SELECT current_user`).Scan(&role); err != nil {
		t.Fatal(err)
	}

	steps := []func() error{
		func() error { _, err := tn.HoldPlaceTenant(ctx, tenant, job.ID, "mine", "api_key:k1"); return err },
		func() error { _, err := tn.HoldLiftTenant(ctx, tenant, job.ID, "api_key:k2"); return err },
		func() error { _, err := tn.HoldPlaceTenant(ctx, tenant, job.ID, "again", "api_key:k1"); return err },
		func() error { _, err := op.HoldPlaceOperator(ctx, job.ID, "case 9", "jane@legal"); return err },
		// Refused, or changing nothing: no event.
		func() error {
			_, err := tn.HoldLiftTenant(ctx, tenant, job.ID, "api_key:k1")
			return ignore(err, store.ErrOperatorHold)
		},
		func() error { _, err := tn.HoldPlaceTenant(ctx, tenant, job.ID, "x", "api_key:k1"); return err },
		func() error { _, err := op.HoldLiftOperator(ctx, job.ID, "bob@legal"); return err },
		func() error {
			_, err := op.HoldLiftOperator(ctx, job.ID, "bob@legal")
			return ignore(err, store.ErrNotFound)
		},
		// The owner with plain SQL.
		func() error {
			_, err := owner.Exec(ctx, `INSERT INTO job_holds (job_id, reason, held_by, authority) VALUES ($1, 'by hand', 'dba', 'operator')`, job.ID)
			return err
		},
		func() error {
			_, err := owner.Exec(ctx, `UPDATE job_holds SET authority = 'tenant' WHERE job_id = $1`, job.ID)
			return err
		},
		func() error { _, err := owner.Exec(ctx, `DELETE FROM job_holds WHERE job_id = $1`, job.ID); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	want := []string{
		"hold_placed by api_key:k1 (mine) authority=tenant direct=false previous=false",
		"hold_lifted by api_key:k2 (mine) authority=tenant direct=false previous=false",
		"hold_placed by api_key:k1 (again) authority=tenant direct=false previous=false",
		"hold_placed by jane@legal (case 9) authority=operator direct=false previous=true",
		"hold_lifted by bob@legal (case 9) authority=operator direct=false previous=false",
		"hold_placed by db_role:" + role + " (by hand) authority=operator direct=true previous=false",
		"hold_placed by db_role:" + role + " (by hand) authority=tenant direct=true previous=true",
		"hold_lifted by db_role:" + role + " (by hand) authority=tenant direct=true previous=false",
	}
	if got := holdEvents(t, owner, job.ID); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("hold events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// TRUNCATE would lift every hold without a row trigger: refused.
	if _, err := tn.HoldPlaceTenant(ctx, tenant, job.ID, "", "api_key:k1"); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Exec(ctx, `TRUNCATE job_holds`); sqlState(err) != "42501" {
		t.Errorf("TRUNCATE job_holds as the owner: %v, want refused", err)
	}
	if holds, err := op.HoldList(ctx, tenant); err != nil || len(holds) != 1 {
		t.Errorf("holds after TRUNCATE: %+v, %v", holds, err)
	}
}

func ignore(err, target error) error {
	if errors.Is(err, target) {
		return nil
	}
	if err == nil {
		return fmt.Errorf("no error, want %v", target)
	}
	return err
}

// TestHoldUnstorableText: a reason or actor PostgreSQL's text would refuse
// (a NUL, invalid UTF-8) is an *UnstorableError naming the field, and
// nothing is held or recorded.
func TestHoldUnstorableText(t *testing.T) {
	t.Parallel()
	owner := dbtest.Pool(t)
	st := store.New(owner)
	ctx := context.Background()
	tenant := "t-" + uuid.NewString()
	job := mustSubmit(t, st, store.SubmitParams{Tenant: tenant})
	for _, tc := range []struct {
		field string
		call  func() error
	}{
		{"reason", func() error { _, err := st.HoldPlaceTenant(ctx, tenant, job.ID, "a\x00b", "api_key:k"); return err }},
		{"reason", func() error { _, err := st.HoldPlaceOperator(ctx, job.ID, "\xff", "jane"); return err }},
		{"actor", func() error { _, err := st.HoldPlaceOperator(ctx, job.ID, "", "ja\x00ne"); return err }},
		{"actor", func() error { _, err := st.HoldLiftOperator(ctx, job.ID, "ja\x00ne"); return err }},
		{"tenant", func() error { _, err := st.HoldLiftTenant(ctx, "t\x00", job.ID, "api_key:k"); return err }},
	} {
		var ue *store.UnstorableError
		if err := tc.call(); !errors.As(err, &ue) || ue.Field != tc.field {
			t.Errorf("%v, want an UnstorableError for %s", err, tc.field)
		}
	}
	if holds, err := st.HoldList(ctx, tenant); err != nil || len(holds) != 0 {
		t.Errorf("holds: %+v, %v; want none", holds, err)
	}
	if got := holdEvents(t, owner, job.ID); len(got) != 0 {
		t.Errorf("hold events: %v; want none", got)
	}
}
