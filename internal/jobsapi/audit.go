package jobsapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/httpapi"
)

// AuditEvent is one entry of a job's audit trail (job_events): what
// happened, who did it (actor: api_key:<id>, worker:<id>, rescuer:<id>,
// retention, ...) and when.
type AuditEvent struct {
	ID         int64           `json:"id"`
	Event      string          `json:"event"`
	Actor      string          `json:"actor"`
	FromStatus *string         `json:"from_status"`
	ToStatus   *string         `json:"to_status"`
	Attempt    *int            `json:"attempt"`
	LeaseOwner *string         `json:"lease_owner"`
	Reason     *string         `json:"reason"`
	Detail     json.RawMessage `json:"detail,omitempty"`
	At         time.Time       `json:"at"`
}

// AuditResponse is GET /v1/jobs/{id}/audit's body. NextAfter is set when
// more events follow: pass it as after= for the next page.
type AuditResponse struct {
	JobID     uuid.UUID    `json:"job_id"`
	Events    []AuditEvent `json:"events"`
	NextAfter *int64       `json:"next_after"`
}

// Pages of GET /v1/jobs/{id}/audit: a job has a handful of events, but
// one cancelled over and over has one per request, without bound.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// GetAudit serves GET /v1/jobs/{id}/audit?after=&limit=: a page of the
// job's audit trail, oldest first, for the key's own tenant (another
// tenant's job is a 404). Keyset pagination: after is the previous page's
// next_after (an event id); limit defaults to DefaultAuditLimit, capped at
// MaxAuditLimit.
func (s *Server) GetAudit(w http.ResponseWriter, r *http.Request) {
	id, err := parseJobID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	var after int64
	if v := q.Get("after"); v != "" {
		after, err = strconv.ParseInt(v, 10, 64)
		if err != nil || after < 0 {
			s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_after", "after must be an event id (a non-negative integer: the previous page's next_after), got %q", truncate(v, 64)))
			return
		}
	}
	limit, err := httpapi.ParseLimit(q.Get("limit"), DefaultAuditLimit, MaxAuditLimit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	events, err := s.store.Events(r.Context(), principalFrom(r.Context()).Tenant, id, after, limit+1)
	if err != nil {
		s.readError(w, r, err, id)
		return
	}
	out := AuditResponse{JobID: id}
	if len(events) > limit {
		events = events[:limit]
		next := events[limit-1].ID
		out.NextAfter = &next
	}
	out.Events = make([]AuditEvent, len(events))
	for i, e := range events {
		out.Events[i] = AuditEvent{
			ID: e.ID, Event: e.Event, Actor: e.Actor, FromStatus: e.FromStatus, ToStatus: e.ToStatus,
			Attempt: e.Attempt, LeaseOwner: e.LeaseOwner, Reason: e.Reason, Detail: e.Detail, At: e.At,
		}
		if len(e.Detail) == 0 || string(e.Detail) == "null" {
			out.Events[i].Detail = nil
		}
	}
	writeJSON(w, http.StatusOK, out)
}
