package jobsapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/google/uuid"
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

// AuditResponse is GET /v1/jobs/{id}/audit's body.
type AuditResponse struct {
	JobID  uuid.UUID    `json:"job_id"`
	Events []AuditEvent `json:"events"`
}

// GetAudit serves GET /v1/jobs/{id}/audit: the job's audit trail, oldest
// first, for the key's own tenant (another tenant's job is a 404).
func (s *Server) GetAudit(w http.ResponseWriter, r *http.Request) {
	id, err := parseJobID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	events, err := s.store.Events(r.Context(), principalFrom(r.Context()).Tenant, id)
	if err != nil {
		s.readError(w, r, err, id)
		return
	}
	out := AuditResponse{JobID: id, Events: make([]AuditEvent, len(events))}
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
