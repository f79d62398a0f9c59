package jobsapi_test

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/testserver"
)

func TestAuditRoute(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{})
	job := b.submit(t, jobsapi.CreateJobRequest{Command: "audit me"})
	if res := b.post(t, "/v1/jobs/"+job.ID.String()+"/cancel", ""); res.status >= 300 {
		t.Fatalf("cancel = %d %s", res.status, res.body)
	}

	res := b.get(t, "/v1/jobs/"+job.ID.String()+"/audit")
	if res.status != 200 {
		t.Fatalf("audit = %d %s", res.status, res.body)
	}
	var got jobsapi.AuditResponse
	res.json(t, &got)
	if got.JobID != job.ID {
		t.Errorf("job_id = %s, want %s", got.JobID, job.ID)
	}
	var names []string
	for _, e := range got.Events {
		names = append(names, e.Event)
		if e.At.IsZero() {
			t.Errorf("event %q has no time", e.Event)
		}
	}
	for _, want := range []string{"created", "cancel_requested"} {
		if !slices.Contains(names, want) {
			t.Errorf("events %q, want one %q", names, want)
		}
	}
	if len(names) == 0 || names[0] != "created" {
		t.Errorf("events %q, want created first", names)
	}

	other := testserver.RunningJob(t, b.pool, "another-tenant", fixtureOwner)
	if res := b.get(t, "/v1/jobs/"+other.JobID.String()+"/audit"); res.status != 404 {
		t.Errorf("another tenant's job: %d %s, want 404", res.status, res.body)
	}
	if res := b.get(t, "/v1/jobs/not-a-uuid/audit"); res.status != 400 {
		t.Errorf("malformed id: %d, want 400", res.status)
	}
}

// TestAuditPaging: GET /v1/jobs/{id}/audit answers in pages (jobstream
// issue 18 item 4: 70,000 events were one 16 MB answer). A job cancelled
// 2,500 times has as many events; the default page holds
// DefaultAuditLimit of them, limit is capped at MaxAuditLimit, and walking
// next_after returns every event once, oldest first, ending with a null
// next_after. A malformed after or limit is a 400 naming it.
func TestAuditPaging(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{})
	job := b.submit(t, jobsapi.CreateJobRequest{Command: "cancel me again and again"})
	// What 2,500 cancel requests leave behind, in one statement.
	if _, err := b.pool.Exec(context.Background(), `
		INSERT INTO job_events (job_id, tenant, event, actor, reason)
		SELECT $1, $2, 'cancel_requested', 'api_key:someone', 'n' || i FROM generate_series(1, 2500) i`,
		job.ID, b.tenant); err != nil {
		t.Fatal(err)
	}
	page := func(query string) jobsapi.AuditResponse {
		t.Helper()
		res := b.get(t, "/v1/jobs/"+job.ID.String()+"/audit"+query)
		if res.status != http.StatusOK {
			t.Fatalf("audit%s = %d %s", query, res.status, res.body)
		}
		var got jobsapi.AuditResponse
		res.json(t, &got)
		return got
	}

	first := page("")
	// Counted after a first read, which records one 'accessed' event.
	var total int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM job_events WHERE job_id = $1`, job.ID).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if len(first.Events) != jobsapi.DefaultAuditLimit || first.NextAfter == nil || *first.NextAfter != first.Events[len(first.Events)-1].ID {
		t.Fatalf("default page: %d events, next_after %v; want %d and the last one's id", len(first.Events), first.NextAfter, jobsapi.DefaultAuditLimit)
	}
	if capped := page("?limit=1000000"); len(capped.Events) != jobsapi.MaxAuditLimit {
		t.Fatalf("limit=1000000: %d events, want the cap %d", len(capped.Events), jobsapi.MaxAuditLimit)
	}
	var (
		ids   []int64
		pages int
		query = "?limit=" + strconv.Itoa(jobsapi.MaxAuditLimit)
	)
	for {
		p := page(query)
		pages++
		for _, e := range p.Events {
			ids = append(ids, e.ID)
		}
		if p.NextAfter == nil {
			break
		}
		query = "?limit=" + strconv.Itoa(jobsapi.MaxAuditLimit) + "&after=" + strconv.FormatInt(*p.NextAfter, 10)
	}
	if len(ids) != total || !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != total || pages != (total+jobsapi.MaxAuditLimit-1)/jobsapi.MaxAuditLimit {
		t.Fatalf("walking the pages: %d events in %d pages (sorted %v), want all %d once, oldest first", len(ids), pages, slices.IsSorted(ids), total)
	}
	for _, q := range []struct{ query, name string }{
		{"?after=-1", "after"}, {"?after=x", "after"}, {"?limit=0", "limit"}, {"?limit=ten", "limit"},
	} {
		res := b.get(t, "/v1/jobs/"+job.ID.String()+"/audit"+q.query)
		if res.status != http.StatusBadRequest || !strings.Contains(string(res.body), q.name) {
			t.Errorf("audit%s = %d %s, want 400 naming %s", q.query, res.status, res.body, q.name)
		}
	}
}
