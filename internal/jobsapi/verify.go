package jobsapi

import (
	"net/http"
)

// VerifyJob serves GET /v1/jobs/{id}/verify: the job's hash chain
// recomputed from its stored chunks (internal/chain), as
// {"ok","chunks","first_bad_seq","reason"}. A running job verifies up to
// its last committed chunk; another tenant's job is a 404, as for every
// route.
func (s *Server) VerifyJob(w http.ResponseWriter, r *http.Request) {
	id, err := parseJobID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.store.Verify(r.Context(), principalFrom(r.Context()).Tenant, id)
	if err != nil {
		s.readError(w, r, err, id)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
