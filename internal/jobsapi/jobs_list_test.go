package jobsapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/jobsapi"
)

// TestListJobsTimeRange: GET /v1/jobs?since=&until= bounds created_at
// (since inclusive, until exclusive), together with the other filters and
// paging; times that are not RFC 3339 are a 400 naming the parameter.
func TestListJobsTimeRange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupAPI(t, apiOptions{})
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var ids []uuid.UUID // job i created at base + i hours
	for i := range 4 {
		eng := "sim"
		if i == 3 {
			eng = "sim2"
		}
		id := b.submit(t, jobsapi.CreateJobRequest{Engine: eng, Command: fmt.Sprint(i)}).ID
		// created_at never changes (jobs_guard): the fixture backdates it
		// with triggers off, as only a superuser can.
		if _, err := b.pool.Exec(ctx, `BEGIN; SET LOCAL session_replication_role = replica;
			UPDATE jobs SET created_at = '`+base.Add(time.Duration(i)*time.Hour).Format(time.RFC3339Nano)+`' WHERE id = '`+id.String()+`'; COMMIT`); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	at := func(h int) string {
		return url.QueryEscape(base.Add(time.Duration(h) * time.Hour).Format(time.RFC3339Nano))
	}
	for _, tc := range []struct {
		query string
		want  []int // newest first
	}{
		{"", []int{3, 2, 1, 0}},
		{"since=" + at(1), []int{3, 2, 1}},
		{"until=" + at(2), []int{1, 0}},
		{"since=" + at(1) + "&until=" + at(3), []int{2, 1}},
		{"since=" + at(1) + "&engine=sim2", []int{3}},
		{"since=" + at(4), nil},
		// Another zone: 13:30 at UTC-03:30 is 17:00 UTC, after job 3 (15:00).
		{"since=" + url.QueryEscape("2026-03-01T13:30:00-03:30"), nil},
		{"since=" + url.QueryEscape("2026-03-01T11:30:00-03:30"), []int{3}},
	} {
		res := b.get(t, "/v1/jobs?"+tc.query)
		if res.status != http.StatusOK {
			t.Errorf("GET /v1/jobs?%s = %d %s", tc.query, res.status, res.body)
			continue
		}
		var page jobsapi.JobList
		res.json(t, &page)
		var got []int
		for _, j := range page.Jobs {
			for i, id := range ids {
				if j.ID == id {
					got = append(got, i)
				}
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("GET /v1/jobs?%s = jobs %v, want %v", tc.query, got, tc.want)
		}
	}
	// Paging keeps the range.
	res := b.get(t, "/v1/jobs?limit=1&until="+at(3))
	var page jobsapi.JobList
	res.json(t, &page)
	if len(page.Jobs) != 1 || page.Jobs[0].ID != ids[2] || page.NextBefore == nil {
		t.Fatalf("first page until job 3: %+v", page)
	}
	res = b.get(t, "/v1/jobs?limit=5&until="+at(3)+"&before="+page.NextBefore.String())
	page = jobsapi.JobList{}
	res.json(t, &page)
	if len(page.Jobs) != 2 || page.Jobs[0].ID != ids[1] || page.Jobs[1].ID != ids[0] || page.NextBefore != nil {
		t.Errorf("second page until job 3: %+v", page)
	}

	for _, tc := range []struct{ query, code string }{
		{"since=yesterday", "invalid_since"},
		{"until=2026-03-01", "invalid_until"},
		{"since=2026-03-01T12:00:00", "invalid_since"}, // no zone
	} {
		res := b.get(t, "/v1/jobs?"+tc.query)
		code, msg := res.apiError(t)
		if res.status != http.StatusBadRequest || code != tc.code {
			t.Errorf("GET /v1/jobs?%s = %d %s %q, want 400 %s", tc.query, res.status, code, msg, tc.code)
		}
	}
}
