package jobsapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/jobsapi"
)

// TestHold: POST /v1/jobs/{id}/hold holds the tenant's own job (listed by
// the store), DELETE lifts it; another tenant's job is a 404, bad input a
// 400 that holds nothing.
func TestHold(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{})
	job := b.submit(t, jobsapi.CreateJobRequest{Command: "keep me"})
	path := "/v1/jobs/" + job.ID.String() + "/hold"

	res := b.do(t, http.MethodPost, path, "application/json", []byte(`{"reason":"case 7"}`))
	var h jobsapi.Hold
	res.json(t, &h)
	if res.status != http.StatusOK || !h.Held || h.Reason != "case 7" || h.JobID != job.ID || h.HeldAt == nil {
		t.Fatalf("hold = %d %s", res.status, res.body)
	}
	holds, err := b.store.HoldList(t.Context(), b.tenant)
	if err != nil || len(holds) != 1 || holds[0].JobID != job.ID {
		t.Fatalf("holds after POST: %+v, %v", holds, err)
	}
	// Again, without a body: still held, reason kept.
	if res = b.post(t, path, ""); res.status != http.StatusOK || !strings.Contains(string(res.body), "case 7") {
		t.Errorf("second hold = %d %s", res.status, res.body)
	}

	other := setupAPI(t, apiOptions{tenant: b.tenant + "-other"})
	if res = other.post(t, path, ""); res.status != http.StatusNotFound {
		t.Errorf("hold of another tenant's job = %d %s, want 404", res.status, res.body)
	}
	if res = other.do(t, http.MethodDelete, path, "", nil); res.status != http.StatusNotFound {
		t.Errorf("unhold of another tenant's job = %d %s, want 404", res.status, res.body)
	}
	if res = b.do(t, http.MethodPost, path, "application/json", []byte(`{"reason":"`+strings.Repeat("x", 1001)+`"}`)); res.status != http.StatusBadRequest {
		t.Errorf("hold with a long reason = %d, want 400", res.status)
	}
	if res = b.do(t, http.MethodPost, path, "application/json", []byte(`{"reason":1}`)); res.status != http.StatusBadRequest {
		t.Errorf("hold with a bad body = %d, want 400", res.status)
	}

	if res = b.do(t, http.MethodDelete, path, "", nil); res.status != http.StatusOK || !strings.Contains(string(res.body), `"held":false`) {
		t.Errorf("unhold = %d %s", res.status, res.body)
	}
	if holds, _ = b.store.HoldList(t.Context(), b.tenant); len(holds) != 0 {
		t.Errorf("holds after DELETE: %+v", holds)
	}
	if res = b.do(t, http.MethodDelete, path, "", nil); res.status != http.StatusOK {
		t.Errorf("second unhold = %d, want 200", res.status)
	}

	// The audit trail has each hold placed and the one lifted, with the
	// key (or dev tenant) that did it; the refused requests, and lifting
	// a hold that was not there, left nothing.
	res = b.get(t, "/v1/jobs/"+job.ID.String()+"/audit")
	var audit jobsapi.AuditResponse
	res.json(t, &audit)
	var got []string
	for _, e := range audit.Events {
		if !strings.HasPrefix(e.Event, "hold_") {
			continue
		}
		reason := ""
		if e.Reason != nil {
			reason = *e.Reason
		}
		if !strings.HasPrefix(e.Actor, "api_key:") && !strings.HasPrefix(e.Actor, "tenant:") {
			t.Errorf("%s by %q, want the key or the dev tenant", e.Event, e.Actor)
		}
		got = append(got, e.Event+"("+reason+")")
	}
	if want := "[hold_placed(case 7) hold_placed(case 7) hold_lifted()]"; fmt.Sprint(got) != want {
		t.Errorf("hold events %v, want %s", got, want)
	}
}
