package jobsapi_test

import (
	"slices"
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
