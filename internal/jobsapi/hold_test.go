package jobsapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/jobsapi"
)

// holdEvents lists the job's hold events from GET /v1/jobs/{id}/audit as
// "event by actor (reason) authority".
func (b apiBundle) holdEvents(t *testing.T, id string) []string {
	t.Helper()
	res := b.get(t, "/v1/jobs/"+id+"/audit")
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
		var detail struct{ Authority string }
		if err := json.Unmarshal(e.Detail, &detail); err != nil {
			t.Errorf("%s detail %s: %v", e.Event, e.Detail, err)
		}
		got = append(got, fmt.Sprintf("%s by %s (%s) %s", e.Event, e.Actor, reason, detail.Authority))
	}
	return got
}

// TestHold: POST /v1/jobs/{id}/hold holds the tenant's own job with tenant
// authority (listed by the store), DELETE lifts it; another tenant's job
// is a 404, bad input a 400 that holds nothing. The API works as the
// server's database role.
func TestHold(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{serverRole: true})
	job := b.submit(t, jobsapi.CreateJobRequest{Command: "keep me"})
	path := "/v1/jobs/" + job.ID.String() + "/hold"
	actor := "tenant:" + b.tenant // the dev-mode principal of tenantAuth

	res := b.do(t, http.MethodPost, path, "application/json", []byte(`{"reason":"case 7"}`))
	var h jobsapi.Hold
	res.json(t, &h)
	if res.status != http.StatusOK || !h.Held || h.Reason != "case 7" || h.JobID != job.ID || h.HeldAt == nil || h.Authority != "tenant" || h.HeldBy != actor {
		t.Fatalf("hold = %d %s", res.status, res.body)
	}
	holds, err := b.store.HoldList(t.Context(), b.tenant)
	if err != nil || len(holds) != 1 || holds[0].JobID != job.ID || holds[0].Authority != "tenant" {
		t.Fatalf("holds after POST: %+v, %v", holds, err)
	}
	// Again, without a body: still held, reason kept.
	if res = b.post(t, path, ""); res.status != http.StatusOK || !strings.Contains(string(res.body), "case 7") {
		t.Errorf("second hold = %d %s", res.status, res.body)
	}

	other := setupAPI(t, apiOptions{tenant: b.tenant + "-other", serverRole: true})
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
	// key (or dev tenant) that did it and the hold's authority; the
	// refused requests, and lifting a hold that was not there, left
	// nothing.
	want := []string{
		"hold_placed by " + actor + " (case 7) tenant",
		"hold_placed by " + actor + " (case 7) tenant",
		"hold_lifted by " + actor + " (case 7) tenant",
	}
	if got := b.holdEvents(t, job.ID.String()); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hold events %v, want %v", got, want)
	}
}

// TestHoldOperator: a hold an operator placed (jobstream hold's store
// call, on the owner's connection) cannot be lifted with the tenant's key:
// DELETE answers 403 naming who placed it and the hold stays; the tenant's
// POST leaves it as it is and answers it, authority and all.
func TestHoldOperator(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{serverRole: true})
	job := b.submit(t, jobsapi.CreateJobRequest{Command: "evidence"})
	path := "/v1/jobs/" + job.ID.String() + "/hold"
	if _, err := b.store.HoldPlaceOperator(t.Context(), job.ID, "case 9", "jane@legal"); err != nil {
		t.Fatal(err)
	}

	res := b.do(t, http.MethodDelete, path, "", nil)
	code, msg := res.apiError(t)
	if res.status != http.StatusForbidden || code != "operator_hold" ||
		msg != "held by an operator (legal hold placed by jane@legal); only an operator can lift it" {
		t.Errorf("tenant DELETE of an operator's hold = %d %s", res.status, res.body)
	}
	res = b.do(t, http.MethodPost, path, "application/json", []byte(`{"reason":"mine"}`))
	var h jobsapi.Hold
	res.json(t, &h)
	if res.status != http.StatusOK || !h.Held || h.Authority != "operator" || h.HeldBy != "jane@legal" || h.Reason != "case 9" {
		t.Errorf("tenant POST on an operator's hold = %d %s", res.status, res.body)
	}
	holds, err := b.store.HoldList(t.Context(), b.tenant)
	if err != nil || len(holds) != 1 || holds[0].Authority != "operator" || holds[0].HeldBy != "jane@legal" || holds[0].Reason != "case 9" {
		t.Fatalf("holds: %+v, %v; want jane@legal's unchanged", holds, err)
	}
	if got, want := b.holdEvents(t, job.ID.String()), []string{"hold_placed by jane@legal (case 9) operator"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hold events %v, want %v", got, want)
	}
}

// TestHoldUnstorableReason: a reason PostgreSQL's text cannot hold (a NUL)
// is a 400 naming the field, never the database's 500, and holds nothing.
func TestHoldUnstorableReason(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{serverRole: true})
	job := b.submit(t, jobsapi.CreateJobRequest{Command: "keep me"})
	for _, body := range []string{`{"reason":"a\u0000b"}`, `{"reason":"\u0000"}`} {
		res := b.do(t, http.MethodPost, "/v1/jobs/"+job.ID.String()+"/hold", "application/json", []byte(body))
		code, msg := res.apiError(t)
		if res.status != http.StatusBadRequest || code != "invalid_reason" || !strings.HasPrefix(msg, "reason: ") || !strings.Contains(msg, "NUL") {
			t.Errorf("POST %s = %d %s, want 400 invalid_reason naming the field", body, res.status, res.body)
		}
	}
	if holds, err := b.store.HoldList(t.Context(), b.tenant); err != nil || len(holds) != 0 {
		t.Errorf("holds: %+v, %v; want none", holds, err)
	}
	if got := b.holdEvents(t, job.ID.String()); len(got) != 0 {
		t.Errorf("hold events %v, want none", got)
	}
}
