package jobsapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
)

// Job is the native API's view of a job.
type Job struct {
	ID                uuid.UUID       `json:"id"`
	Status            string          `json:"status"`
	Engine            string          `json:"engine"`
	RoomID            string          `json:"room_id,omitempty"`
	FinishReason      string          `json:"finish_reason,omitempty"`
	Error             json.RawMessage `json:"error,omitempty"`
	Usage             json.RawMessage `json:"usage,omitempty"`
	Attempt           int             `json:"attempt"`
	CreatedAt         time.Time       `json:"created_at"`
	StartedAt         *time.Time      `json:"started_at,omitempty"`
	FinishedAt        *time.Time      `json:"finished_at,omitempty"`
	CancelRequestedAt *time.Time      `json:"cancel_requested_at,omitempty"`
	// QueuedSeconds is, for a queued job, how long it has waited since it
	// was submitted: under load (admission control holds new jobs back
	// while the chunk writer is behind), jobs wait queued rather than
	// start and fail.
	QueuedSeconds *float64 `json:"queued_seconds,omitempty"`
}

func toJob(j store.Job) Job {
	var queued *float64
	if j.Status == store.StatusQueued {
		s := max(time.Since(j.CreatedAt).Seconds(), 0)
		queued = &s
	}
	return Job{
		QueuedSeconds: queued,
		ID:            j.ID, Status: j.Status, Engine: j.Engine, RoomID: j.RoomID,
		FinishReason: j.FinishReason, Error: j.Error, Usage: j.Usage, Attempt: j.Attempt,
		CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt,
		CancelRequestedAt: j.CancelRequestedAt,
	}
}

// CreateJobRequest is the body of POST /v1/jobs.
type CreateJobRequest struct {
	Engine     string                     `json:"engine"`
	Command    string                     `json:"command"`
	System     string                     `json:"system,omitempty"`
	Messages   json.RawMessage            `json:"messages,omitempty"`
	Params     map[string]json.RawMessage `json:"params,omitempty"`
	RoomID     string                     `json:"room_id,omitempty"`
	UseHistory bool                       `json:"use_history,omitempty"`
}

// Submit validates and stores a job for p. Every surface submits through
// it (native, SEMOSS), so all reject the same bad input the same way.
func (s *Server) Submit(r *http.Request, p httpapi.Principal, req CreateJobRequest) (store.Job, error) {
	return s.SubmitPixel(r, p, req, nil)
}

// SubmitPixel is Submit storing pixel (SEMOSS's metadata, if set) with the
// job, in one transaction. The request is validated completely first: bad
// input is a 4xx naming the problem, and nothing is stored.
func (s *Server) SubmitPixel(r *http.Request, p httpapi.Principal, req CreateJobRequest, pixel *store.PixelJob) (store.Job, error) {
	if s.drain.Draining() {
		return store.Job{}, httpapi.ErrDraining()
	}
	if req.Engine == "" {
		req.Engine = "sim"
	}
	sp := store.SubmitParams{
		Tenant:   p.Tenant,
		APIKeyID: p.KeyID,
		Engine:   req.Engine,
		RoomID:   req.RoomID,
		Request: store.Request{
			Command: req.Command, System: req.System, Messages: req.Messages,
			Params: req.Params, UseHistory: req.UseHistory,
		},
		Pixel: pixel,
	}
	// What PostgreSQL would refuse first: every later check may read the
	// values.
	if err := sp.Check(); err != nil {
		return store.Job{}, errorf(http.StatusBadRequest, "invalid_request", "%s", truncate(err.Error(), httpapi.MaxMessage))
	}
	if err := engine.CheckPrompt(req.Command, req.Messages, req.Params); err != nil {
		code := "invalid_messages"
		if errors.Is(err, engine.ErrEmptyPrompt) {
			code = "invalid_request"
		}
		return store.Job{}, errorf(http.StatusBadRequest, code, "%s", truncate(err.Error(), httpapi.MaxMessage))
	}
	if err := s.engines.Validate(req.Engine, req.Params); err != nil {
		if errors.Is(err, engine.ErrUnknownEngine) {
			return store.Job{}, errorf(http.StatusBadRequest, "unknown_engine", "unknown engine %q (GET /v1/engines lists them)", req.Engine)
		}
		return store.Job{}, errorf(http.StatusBadRequest, "invalid_params", "%s", truncate(err.Error(), httpapi.MaxMessage))
	}
	if len(req.RoomID) > 256 {
		return store.Job{}, errorf(http.StatusBadRequest, "invalid_room_id", "room_id is longer than 256 bytes")
	}
	if n := promptBytes(req); n > s.cfg.MaxPromptBytes {
		return store.Job{}, errorf(http.StatusRequestEntityTooLarge, "prompt_too_large", "the prompt is %d bytes, more than the %d allowed", n, s.cfg.MaxPromptBytes)
	}
	job, err := s.store.Submit(r.Context(), sp)
	if errors.Is(err, store.ErrKeyRevoked) {
		// Revoked since the credential cache let the request in.
		return job, errorf(http.StatusUnauthorized, "unauthenticated", "%v", err)
	}
	if errors.Is(err, store.ErrUnstorable) {
		return job, errorf(http.StatusBadRequest, "invalid_request", "%s", truncate(err.Error(), httpapi.MaxMessage))
	}
	if err != nil {
		return job, err
	}
	// Prompts are user data: logged only when the operator asked for it.
	if s.cfg.LogPrompts {
		s.log.Info("job submitted", "job", job.ID, "tenant", p.Tenant, "engine", req.Engine,
			"command", req.Command, "system", req.System, "messages", string(req.Messages))
	} else {
		s.log.Debug("job submitted", "job", job.ID, "tenant", p.Tenant, "engine", req.Engine)
	}
	return job, nil
}

// promptBytes is the size of everything in req that is sent to the model
// as the prompt.
func promptBytes(req CreateJobRequest) int {
	return len(req.Command) + len(req.System) + len(req.Messages) +
		len(req.Params[engine.ParamMessages]) + len(req.Params[engine.ParamFullPrompt])
}

// CreateJob serves POST /v1/jobs: it validates and stores a job (Submit)
// and answers 201 with it.
func (s *Server) CreateJob(w http.ResponseWriter, r *http.Request) {
	var req CreateJobRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	job, err := s.Submit(r, principalFrom(r.Context()), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/jobs/"+job.ID.String())
	writeJSON(w, http.StatusCreated, toJob(job))
}

// GetJob serves GET /v1/jobs/{id}.
func (s *Server) GetJob(w http.ResponseWriter, r *http.Request) {
	id, err := parseJobID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	job, err := s.store.Get(r.Context(), principalFrom(r.Context()).Tenant, id)
	if err != nil {
		s.writeError(w, r, storeError(err, id))
		return
	}
	writeJSON(w, http.StatusOK, toJob(job))
}

var validStatuses = map[string]bool{
	store.StatusQueued: true, store.StatusRunning: true, store.StatusCompleted: true,
	store.StatusFailed: true, store.StatusCancelled: true,
}

// JobList is the body of GET /v1/jobs.
type JobList struct {
	Jobs []Job `json:"jobs"`
	// NextBefore is the cursor for the next page (?before=), absent on the
	// last page.
	NextBefore *uuid.UUID `json:"next_before,omitempty"`
}

// ListJobs serves GET /v1/jobs: the tenant's jobs, newest first, a page
// at a time (?before=, ?limit=), filtered by ?status= and ?engine=.
func (s *Server) ListJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := store.ListParams{Tenant: principalFrom(r.Context()).Tenant, Status: q.Get("status"), Engine: q.Get("engine")}
	if err := store.CheckText("engine", p.Engine); err != nil {
		// PostgreSQL would refuse the parameter (a 500).
		s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_engine", "%s", err))
		return
	}
	if p.Status != "" && !validStatuses[p.Status] {
		s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_status", "status must be one of queued, running, completed, failed, cancelled; got %q", truncate(p.Status, 64)))
		return
	}
	if b := q.Get("before"); b != "" {
		id, err := httpapi.ParseJobID(b)
		if err != nil {
			s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_before", "before must be a job id, got %q", truncate(b, 64)))
			return
		}
		p.BeforeID = &id
	}
	for _, b := range []struct {
		name string
		dst  **time.Time
	}{{"since", &p.Since}, {"until", &p.Until}} {
		v := q.Get(b.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_"+b.name, "%s must be an RFC 3339 time such as 2026-12-01T20:00:00Z, got %q", b.name, truncate(v, 64)))
			return
		}
		*b.dst = &t
	}
	limit, err := httpapi.ParseLimit(q.Get("limit"), 50, 500)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p.Limit = limit + 1
	jobs, err := s.store.List(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := JobList{Jobs: []Job{}}
	for i, j := range jobs {
		if i == limit {
			id := jobs[i-1].ID
			out.NextBefore = &id
			break
		}
		out.Jobs = append(out.Jobs, toJob(j))
	}
	writeJSON(w, http.StatusOK, out)
}

// ChunkPage is the body of GET /v1/jobs/{id}/chunks.
type ChunkPage struct {
	Status       string        `json:"status"`
	FinishReason string        `json:"finish_reason,omitempty"`
	Chunks       []store.Chunk `json:"chunks"`
	NextOffset   int           `json:"next_offset"`
	// More is true when the page was cut by limit: read again at once.
	More bool `json:"more"`
}

// GetChunks serves GET /v1/jobs/{id}/chunks: a page of chunks from
// ?offset=, long-polling up to ?wait= for new ones.
func (s *Server) GetChunks(w http.ResponseWriter, r *http.Request) {
	id, err := parseJobID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	offset, err := httpapi.ParseOffset("offset", q.Get("offset"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	wait, err := httpapi.ParseWait("wait", q.Get("wait"), 0, s.cfg.MaxWait)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	minWait, err := httpapi.ParseWait("min_wait", q.Get("min_wait"), 0, s.cfg.MaxWait)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, err := httpapi.ParseLimit(q.Get("limit"), s.cfg.PageSize, s.cfg.MaxPageSize)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// A drain (shutdown) ends the wait early with what there is: a 200
	// the client continues from, on another node.
	snap, err := s.read(r.Context(), stream.Params{
		Tenant: principalFrom(r.Context()).Tenant, JobID: id, From: offset, Limit: limit, Wait: wait, MinWait: minWait,
	})
	if err != nil {
		s.readError(w, r, err, id)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(appendPage(make([]byte, 0, 128+256*len(snap.Chunks)), pageOf(snap, offset)))
}

func pageOf(snap store.Snapshot, offset int) ChunkPage {
	p := ChunkPage{Status: snap.Status, FinishReason: snap.FinishReason, Chunks: snap.Chunks, NextOffset: offset, More: snap.More}
	if p.Chunks == nil {
		p.Chunks = []store.Chunk{}
	}
	if n := len(snap.Chunks); n > 0 {
		p.NextOffset = snap.Chunks[n-1].Seq + 1
	}
	return p
}

// CancelJob serves POST /v1/jobs/{id}/cancel: 202 when a cancel is
// requested, 200 when one already was, 409 for a finished job.
func (s *Server) CancelJob(w http.ResponseWriter, r *http.Request) {
	id, err := parseJobID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tenant := principalFrom(r.Context()).Tenant
	outcome, err := s.store.RequestCancel(r.Context(), tenant, id)
	if err != nil {
		s.writeError(w, r, storeError(err, id))
		return
	}
	job, err := s.store.Get(r.Context(), tenant, id)
	if err != nil {
		s.writeError(w, r, storeError(err, id))
		return
	}
	switch outcome {
	case store.CancelAlreadyFinished:
		s.writeError(w, r, errorf(http.StatusConflict, "job_finished", "job %s already finished with status %s", id, job.Status))
	case store.CancelRequested:
		writeJSON(w, http.StatusAccepted, toJob(job))
	default:
		writeJSON(w, http.StatusOK, toJob(job))
	}
}

// TranscriptResponse is the body of GET /v1/jobs/{id}/transcript.
type TranscriptResponse struct {
	JobID        uuid.UUID       `json:"job_id"`
	Status       string          `json:"status"`
	FinishReason string          `json:"finish_reason,omitempty"`
	Content      string          `json:"content"`
	Thinking     string          `json:"thinking,omitempty"`
	ToolCalls    json.RawMessage `json:"tool_calls"`
	// Upto is the offset the transcript covers (chunks with seq < upto),
	// absent when it covers the whole job.
	Upto *int `json:"upto,omitempty"`
}

// GetTranscript serves GET /v1/jobs/{id}/transcript: the job's text,
// thinking and tool calls assembled from its chunks (up to ?upto=).
func (s *Server) GetTranscript(w http.ResponseWriter, r *http.Request) {
	id, err := parseJobID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// No upto is the whole job; upto=0 the empty prefix.
	upto, rawUpto := store.TranscriptAll, r.URL.Query().Get("upto")
	if rawUpto != "" {
		if upto, err = httpapi.ParseOffset("upto", rawUpto); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	tenant := principalFrom(r.Context()).Tenant
	job, err := s.store.Get(r.Context(), tenant, id)
	if err != nil {
		s.writeError(w, r, storeError(err, id))
		return
	}
	t, err := s.store.Transcript(r.Context(), tenant, id, upto)
	if err != nil {
		s.writeError(w, r, storeError(err, id))
		return
	}
	writeJSON(w, http.StatusOK, TranscriptResponse{
		JobID: id, Status: job.Status, FinishReason: job.FinishReason,
		Content: t.Content, Thinking: t.Thinking, ToolCalls: t.ToolCalls, Upto: uptoField(upto),
	})
}

func uptoField(upto int) *int {
	if upto < 0 {
		return nil
	}
	return &upto
}

// EngineInfo is what GET /v1/engines tells every tenant of an engine: its
// id, provider and model. Never its base URL, which names internal hosts
// and may carry secrets in its query string; the operator sees it in the
// engines file (`jobstream engines --engines FILE`).
type EngineInfo struct {
	ID       string `json:"id"`
	Provider string `json:"provider"`
	Model    string `json:"model,omitempty"`
}

// ListEngines serves GET /v1/engines: {"engines":[EngineInfo..]}.
func (s *Server) ListEngines(w http.ResponseWriter, r *http.Request) {
	infos := s.engines.List()
	out := make([]EngineInfo, len(infos))
	for i, e := range infos {
		out[i] = EngineInfo{ID: e.ID, Provider: e.Provider, Model: e.Model}
	}
	writeJSON(w, http.StatusOK, map[string]any{"engines": out})
}

// sseEvent formats one SSE event.
func sseEvent(id, event string, data []byte) []byte {
	b := make([]byte, 0, len(data)+64)
	if id != "" {
		b = fmt.Appendf(b, "id: %s\n", id)
	}
	if event != "" {
		b = fmt.Appendf(b, "event: %s\n", event)
	}
	b = append(b, "data: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}
