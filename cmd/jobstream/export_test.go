package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestExportIsRecorded (issue 17, item 10): every `jobstream export`,
// also one that fails part way, leaves an admin event naming the person
// who ran it, the selection and the number of jobs written.
func TestExportIsRecorded(t *testing.T) {
	t.Parallel()
	url := testserver.Database(t)
	pool := testserver.Pool(t, url, 2)
	s := store.New(pool)
	ctx := context.Background()
	env := map[string]string{"DATABASE_URL": url, "USER": "auditor"}
	var ids []uuid.UUID
	for _, tenant := range []string{"acme", "acme", "globex"} {
		l := testserver.RunningJob(t, pool, tenant, "w1")
		if _, err := s.WriteBatch(ctx, "w1", []store.NewChunk{testserver.FinishChunk(l, 0, "stop")},
			[]store.Finish{{Lease: l, Status: store.StatusCompleted, FinishReason: "stop"}}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, l.JobID)
	}
	missing := uuid.Must(uuid.NewV7())

	if res := runCmd(t, env, "export", "--tenant", "acme", "--since", "1h"); res.err != nil || strings.Count(res.stdout, `"type":"job"`) != 2 {
		t.Fatalf("export --tenant: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	if res := runCmd(t, env, "export", ids[2].String()); res.err != nil || strings.Count(res.stdout, `"type":"job"`) != 1 {
		t.Fatalf("export JOB_ID: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	if res := runCmd(t, env, "export", ids[0].String(), missing.String()); res.err == nil || !strings.Contains(res.err.Error(), "not found") {
		t.Fatalf("export of a job that does not exist: %v, want not found", res.err)
	}

	rows, err := pool.Query(ctx, `SELECT tenant, subject, actor, db_role = session_user, detail FROM admin_events WHERE event = 'export' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	type detail struct {
		Tenant   *string     `json:"tenant"`
		Since    *time.Time  `json:"since"`
		IDs      []uuid.UUID `json:"ids"`
		Jobs     int         `json:"jobs"`
		Complete bool        `json:"complete"`
	}
	type row struct {
		tenant, subject, actor string
		ownRole                bool
		d                      detail
	}
	var got []row
	for rows.Next() {
		var r row
		var raw []byte
		if err := rows.Scan(&r.tenant, &r.subject, &r.actor, &r.ownRole, &raw); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &r.d); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d export events, want 3: %+v", len(got), got)
	}
	for i, r := range got {
		if !strings.HasPrefix(r.actor, "cli:") || !strings.Contains(r.actor, "@") || !r.ownRole {
			t.Errorf("export %d recorded as %q (by the connection's own role: %v), want the person who ran it", i, r.actor, r.ownRole)
		}
	}
	if r := got[0]; r.tenant != "acme" || r.subject != "acme" || r.d.Tenant == nil || *r.d.Tenant != "acme" || r.d.Since == nil ||
		time.Since(*r.d.Since) < 59*time.Minute || time.Since(*r.d.Since) > 2*time.Hour || r.d.IDs != nil || r.d.Jobs != 2 || !r.d.Complete {
		t.Errorf("export --tenant acme --since 1h recorded as %+v", r)
	}
	if r := got[1]; r.tenant != "" || r.d.Tenant != nil || r.d.Since != nil || len(r.d.IDs) != 1 || r.d.IDs[0] != ids[2] || r.d.Jobs != 1 || !r.d.Complete {
		t.Errorf("export JOB_ID recorded as %+v", r)
	}
	if r := got[2]; len(r.d.IDs) != 2 || r.d.IDs[1] != missing || r.d.Jobs != 1 || r.d.Complete {
		t.Errorf("the failed export recorded as %+v, want 1 job written, incomplete", r)
	}
}
