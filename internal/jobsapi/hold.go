package jobsapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/store"
)

// maxHoldReason caps a hold's reason (a case number, a ticket).
const maxHoldReason = 1000

// HoldRequest is the optional body of POST /v1/jobs/{id}/hold.
type HoldRequest struct {
	Reason string `json:"reason"`
}

// Hold is the body of answers on /v1/jobs/{id}/hold.
type Hold struct {
	JobID  uuid.UUID  `json:"job_id"`
	Held   bool       `json:"held"`
	Reason string     `json:"reason,omitempty"`
	HeldBy string     `json:"held_by,omitempty"`
	HeldAt *time.Time `json:"held_at,omitempty"`
}

// HoldJob serves POST /v1/jobs/{id}/hold: a legal hold keeps the job and
// its chunks past any retention policy until DELETE lifts it. Holding a
// held job keeps it held (a non-empty reason replaces the old one). 409
// when retention is already removing the job.
func (s *Server) HoldJob(w http.ResponseWriter, r *http.Request) {
	id, err := parseJobID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req HoldRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, 16<<10, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if len(req.Reason) > maxHoldReason {
		s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_reason", "reason must be at most %d bytes, got %d", maxHoldReason, len(req.Reason)))
		return
	}
	p := principalFrom(r.Context())
	h, err := s.store.HoldSet(r.Context(), p.Tenant, id, req.Reason, holdActor(p))
	switch {
	case errors.Is(err, store.ErrRetained):
		s.writeError(w, r, errorf(http.StatusConflict, "job_retained", "job %s is being removed by retention and can no longer be held", id))
		return
	case err != nil:
		s.writeError(w, r, storeError(err, id))
		return
	}
	writeJSON(w, http.StatusOK, Hold{JobID: id, Held: true, Reason: h.Reason, HeldBy: h.HeldBy, HeldAt: &h.HeldAt})
}

// UnholdJob serves DELETE /v1/jobs/{id}/hold: the job is treated by its
// tenant's retention policy again. Lifting a hold that is not there is not
// an error.
func (s *Server) UnholdJob(w http.ResponseWriter, r *http.Request) {
	id, err := parseJobID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tenant := principalFrom(r.Context()).Tenant
	if _, err := s.store.Get(r.Context(), tenant, id); err != nil {
		s.writeError(w, r, storeError(err, id))
		return
	}
	if err := s.store.HoldClear(r.Context(), tenant, id, holdActor(principalFrom(r.Context()))); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Hold{JobID: id, Held: false})
}

// holdActor names who places or lifts a hold in the audit trail: the API
// key, or the tenant of an anonymous dev-mode request.
func holdActor(p httpapi.Principal) string { return store.KeyActor(p.KeyID, p.Tenant) }
