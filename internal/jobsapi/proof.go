package jobsapi

import (
	"errors"
	"net/http"

	"github.com/jobstream/jobstream/internal/ledger"
	"github.com/jobstream/jobstream/internal/store"
)

// JobProof answers GET /v1/jobs/{id}/proof: the job's leaf in the
// transparency log, its index, its inclusion proof against the latest
// signed checkpoint and that checkpoint (internal/ledger). The key's own
// tenant's jobs only; 404 for another's, and for a job not in a signed
// checkpoint yet (it has not ended, or ended seconds ago: retry).
func (s *Server) JobProof(w http.ResponseWriter, r *http.Request) {
	id, err := parseJobID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tenant := principalFrom(r.Context()).Tenant
	p, err := ledger.ProveJob(r.Context(), s.store, tenant, id)
	if errors.Is(err, ledger.ErrNotLogged) {
		// Another tenant's job reads as not found, as everywhere.
		if j, gerr := s.store.LogJobRow(r.Context(), id); gerr == nil && j.Tenant == tenant {
			w.Header().Set("Retry-After", "5")
			s.writeError(w, r, errorf(http.StatusNotFound, "not_logged", "job %s is not in a signed checkpoint yet (it has not ended, or the log has not been signed since): retry later", id))
			return
		}
		s.writeError(w, r, storeError(store.ErrNotFound, id))
		return
	}
	if err != nil {
		s.readError(w, r, err, id)
		return
	}
	writeJSON(w, http.StatusOK, p)
}
