package jobsapi

import (
	"container/list"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/chain"
	"github.com/jobstream/jobstream/internal/store"
)

// VerifyResponse is GET /v1/jobs/{id}/verify's answer: the chain's verdict
// (chain.Result), when it was computed, and whether it was computed for
// this request or is a finished job's earlier verdict.
type VerifyResponse struct {
	chain.Result
	// CheckedAt is when the chunks were read and the chain recomputed.
	CheckedAt time.Time `json:"checked_at"`
	// Cached: the verdict was computed for an earlier request, for the
	// same seal (the job was finished then, with the same chunk count and
	// final hash as now). ?recheck=true recomputes it.
	Cached bool `json:"cached"`
}

// VerifyJob serves GET /v1/jobs/{id}/verify: the job's hash chain
// recomputed from its stored chunks (internal/chain), as
// {"ok","chunks","first_bad_seq","reason","checked_at","cached"}. A running
// job verifies up to its last committed chunk; another tenant's job is a
// 404, as for every route.
//
// A finished job's verdict cannot change unless its stored record is
// tampered with, so it is kept (per process, for the job's seal: its
// chunk count and final hash) and served again after reading only the
// job's row: reading every chunk again (0.46 s and ~20 MB at 100,000
// chunks) is an explicit request, ?recheck=true, for an auditor who
// suspects tampering since.
func (s *Server) VerifyJob(w http.ResponseWriter, r *http.Request) {
	id, err := parseJobID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	recheck := false
	if v := r.URL.Query().Get("recheck"); v != "" {
		if recheck, err = strconv.ParseBool(v); err != nil {
			s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_recheck", "recheck must be true or false, got %q", truncate(v, 32)))
			return
		}
	}
	tenant := principalFrom(r.Context()).Tenant
	if !recheck {
		seal, err := s.store.JobSeal(r.Context(), tenant, id)
		if err != nil {
			s.readError(w, r, err, id)
			return
		}
		if v, ok := s.verdicts.get(id, tenant, seal); ok {
			v.Cached = true
			writeJSON(w, http.StatusOK, v)
			return
		}
	}
	at := time.Now()
	res, seal, err := s.store.VerifySealed(r.Context(), tenant, id)
	if err != nil {
		s.readError(w, r, err, id)
		return
	}
	v := VerifyResponse{Result: res, CheckedAt: at.UTC()}
	if seal.Terminal {
		s.verdicts.put(id, tenant, seal, v)
	}
	writeJSON(w, http.StatusOK, v)
}

// verdictCacheSize bounds the verdicts kept: ~200 bytes each.
const verdictCacheSize = 10_000

// verdictCache keeps the verify verdicts of finished jobs, the least
// recently used dropped first. An entry holds for its job's seal only: a
// verdict is served again only while the row says the same as when it was
// computed.
type verdictCache struct {
	mu      sync.Mutex
	max     int
	order   *list.List // of uuid.UUID, most recently used first
	entries map[uuid.UUID]*verdictEntry
}

type verdictEntry struct {
	tenant  string
	seal    store.Seal
	verdict VerifyResponse
	elem    *list.Element
}

func newVerdictCache(max int) *verdictCache {
	return &verdictCache{max: max, order: list.New(), entries: map[uuid.UUID]*verdictEntry{}}
}

func (c *verdictCache) get(id uuid.UUID, tenant string, seal store.Seal) (VerifyResponse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || e.tenant != tenant || !e.seal.Same(seal) {
		return VerifyResponse{}, false
	}
	c.order.MoveToFront(e.elem)
	return e.verdict, true
}

func (c *verdictCache) put(id uuid.UUID, tenant string, seal store.Seal, v VerifyResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[id]; ok {
		e.tenant, e.seal, e.verdict = tenant, seal, v
		c.order.MoveToFront(e.elem)
		return
	}
	c.entries[id] = &verdictEntry{tenant: tenant, seal: seal, verdict: v, elem: c.order.PushFront(id)}
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(uuid.UUID))
	}
}
