package jobsapi

import (
	"errors"
	"net/http"
	"strings"
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
	JobID  uuid.UUID `json:"job_id"`
	Held   bool      `json:"held"`
	Reason string    `json:"reason,omitempty"`
	// HeldBy is who placed the hold: api_key:<id>, or the operator who
	// ran jobstream hold.
	HeldBy string `json:"held_by,omitempty"`
	// Authority is operator or tenant: a tenant's key cannot lift an
	// operator's hold.
	Authority string     `json:"authority,omitempty"`
	HeldAt    *time.Time `json:"held_at,omitempty"`
}

// HoldJob serves POST /v1/jobs/{id}/hold: a legal hold with the tenant's
// authority keeps the job and its chunks past any retention policy until
// DELETE lifts it. Holding a held job keeps it held (a non-empty reason
// replaces the tenant's old one); a job an operator holds stays held as
// the operator placed it, and the answer shows that hold. 409 when
// retention is already removing the job.
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
	if err := store.CheckText("reason", req.Reason); err != nil {
		s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_reason", "%s", err))
		return
	}
	p := principalFrom(r.Context())
	h, err := s.store.HoldPlaceTenant(r.Context(), p.Tenant, id, req.Reason, holdActor(p))
	if err != nil {
		s.writeError(w, r, holdError(err, id))
		return
	}
	writeJSON(w, http.StatusOK, Hold{JobID: id, Held: true, Reason: h.Reason, HeldBy: h.HeldBy, Authority: h.Authority, HeldAt: &h.HeldAt})
}

// UnholdJob serves DELETE /v1/jobs/{id}/hold: the job is treated by its
// tenant's retention policy again. Lifting a hold that is not there is not
// an error; lifting an operator's hold is a 403 naming who placed it, and
// the hold stays.
func (s *Server) UnholdJob(w http.ResponseWriter, r *http.Request) {
	id, err := parseJobID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p := principalFrom(r.Context())
	if _, err := s.store.Get(r.Context(), p.Tenant, id); err != nil {
		s.writeError(w, r, storeError(err, id))
		return
	}
	if _, err := s.store.HoldLiftTenant(r.Context(), p.Tenant, id, holdActor(p)); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, holdError(err, id))
		return
	}
	writeJSON(w, http.StatusOK, Hold{JobID: id, Held: false})
}

// holdError maps the store's hold errors onto API errors.
func holdError(err error, id uuid.UUID) error {
	var ue *store.UnstorableError
	switch {
	case errors.Is(err, store.ErrOperatorHold):
		return errorf(http.StatusForbidden, "operator_hold", "%s", err)
	case errors.Is(err, store.ErrRetained):
		return errorf(http.StatusConflict, "job_retained", "job %s is being removed by retention and can no longer be held", id)
	case errors.As(err, &ue):
		return errorf(http.StatusBadRequest, "invalid_"+strings.ReplaceAll(ue.Field, " ", "_"), "%s", err)
	}
	return storeError(err, id)
}

// holdActor names who places or lifts a hold in the audit trail: the API
// key, or the tenant of an anonymous dev-mode request.
func holdActor(p httpapi.Principal) string { return store.KeyActor(p.KeyID, p.Tenant) }
