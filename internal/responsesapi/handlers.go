package responsesapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/respevent"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
)

// Create serves POST /v1/responses. The request is validated completely
// before the job is stored. Then: background returns the Response at once
// (status queued), or streams its events with stream; stream alone streams
// them; otherwise the request waits for the end and returns the Response.
// A draining node takes no new work: 503 with Retry-After, so the client
// submits to another node rather than leave a job on one that has stopped
// claiming (as the other surfaces refuse it).
func (s *Server) Create(w http.ResponseWriter, r *http.Request) {
	if s.drain.Draining() {
		s.writeError(w, r, httpapi.ErrDraining())
		return
	}
	c, err := decodeCreate(w, r, s.cfg, s.engines)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p := s.principal(r.Context())
	c.job.Tenant, c.job.APIKeyID = p.Tenant, p.KeyID
	meta, input := mustJSON(c.meta), mustJSON(c.input)
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	job, err := s.store.SubmitResponse(ctx, c.job, meta, input)
	cancel()
	if errors.Is(err, store.ErrKeyRevoked) {
		// Revoked since the credential cache let the request in.
		err = httpapi.Errorf(http.StatusUnauthorized, "unauthenticated", "%v", err)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Debug("response submitted", "job", job.ID, "tenant", p.Tenant, "engine", job.Engine)
	rec := store.ResponseRecord{JobID: job.ID, Status: job.Status, CreatedAt: job.CreatedAt, Meta: meta}
	d, err := s.deriver(rec)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case c.stream:
		s.serveEvents(w, r, rec, d, -1)
	case c.meta.Background:
		writeJSON(w, http.StatusOK, d.Response(respevent.StatusQueued))
	default:
		// Wait for the end. The job is durable: if the client goes away
		// or the server drains, it runs on, and GET shows how it ended.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		status, err := s.run(r.Context(), p.Tenant, rec, d, true, nil)
		if err != nil && r.Context().Err() != nil {
			return
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, d.Response(liveStatus(status)))
	}
}

// getParams are GET /v1/responses/{id}'s options: in the query, or (as
// openai-go sends stream) in a JSON body.
type getParams struct {
	Stream             *bool  `json:"stream"`
	StartingAfter      *int64 `json:"starting_after"`
	IncludeObfuscation *bool  `json:"include_obfuscation"`
}

func parseGet(w http.ResponseWriter, r *http.Request, limit int64) (stream bool, after int64, err error) {
	var p getParams
	if r.Body != nil && r.Body != http.NoBody {
		if r.Header.Get("Content-Type") == "" {
			// openai-go sends GetStreaming's stream option in a body
			// without a Content-Type. A GET changes nothing, so the
			// JSON routes' rule (httpapi.JSONContentType) bends for a
			// missing one here only: a wrong one is still refused.
			r.Header.Set("Content-Type", "application/json")
		}
		body, err := readBody(w, r, limit)
		if err != nil {
			return false, 0, err
		}
		if len(bytes.TrimSpace(body)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				return false, 0, decodeError(err)
			}
		}
	}
	q := r.URL.Query()
	if v := q.Get("stream"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, 0, invalid("stream", "invalid_value", "Invalid 'stream': want true or false, got %q.", truncate(v, 64))
		}
		p.Stream = &b
	}
	if v := q.Get("starting_after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false, 0, invalid("starting_after", "invalid_value", "Invalid 'starting_after': want an event sequence number, got %q.", truncate(v, 64))
		}
		p.StartingAfter = &n
	}
	if v := q.Get("include_obfuscation"); v != "" {
		if _, err := strconv.ParseBool(v); err != nil {
			return false, 0, invalid("include_obfuscation", "invalid_value", "Invalid 'include_obfuscation': want true or false, got %q.", truncate(v, 64))
		}
	}
	after = -1
	if p.StartingAfter != nil {
		if *p.StartingAfter < -1 {
			return false, 0, invalid("starting_after", "invalid_value", "Invalid 'starting_after': want a sequence number of at least 0, got %d.", *p.StartingAfter)
		}
		after = *p.StartingAfter
		if p.Stream == nil || !*p.Stream {
			return false, 0, invalid("starting_after", "invalid_value", "'starting_after' needs stream=true.")
		}
	}
	return p.Stream != nil && *p.Stream, after, nil
}

// Get serves GET /v1/responses/{id}: the Response object, or with
// stream=true its events after starting_after, replayed from the stored
// chunks and then followed until the terminal event.
func (s *Server) Get(w http.ResponseWriter, r *http.Request) {
	streaming, after, err := parseGet(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rec, err := s.record(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	d, err := s.deriver(rec)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if streaming {
		s.serveEvents(w, r, rec, d, after)
		return
	}
	status, err := s.run(r.Context(), s.principal(r.Context()).Tenant, rec, d, false, nil)
	if err != nil {
		s.readError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d.Response(liveStatus(status)))
}

// Cancel serves POST /v1/responses/{id}/cancel: it asks the worker to stop
// the model, waits (up to cancelWait) for the job to end, and returns the
// Response. Cancelling a finished response changes nothing and returns it
// as it ended, so a second cancel returns the same final Response.
func (s *Server) Cancel(w http.ResponseWriter, r *http.Request) {
	rec, err := s.record(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tenant := s.principal(r.Context()).Tenant
	if !store.Terminal(rec.Status) {
		ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
		_, err := s.store.RequestCancel(ctx, tenant, rec.JobID)
		cancel()
		if err != nil {
			s.readError(w, r, err)
			return
		}
	}
	d, err := s.deriver(rec)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, stop := context.WithTimeout(r.Context(), cancelWait)
	defer stop()
	status, err := s.run(ctx, tenant, rec, d, true, nil)
	if err != nil && (r.Context().Err() != nil || ctx.Err() == nil) {
		s.readError(w, r, err)
		return
	}
	// A model that has not stopped within cancelWait: the Response as it
	// is (in_progress); the cancel stands.
	writeJSON(w, http.StatusOK, d.Response(liveStatus(status)))
}

// Deleted is the body of DELETE /v1/responses/{id}.
type Deleted struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Deleted bool   `json:"deleted"`
}

// Delete serves DELETE /v1/responses/{id}. It hides the response from this
// surface (every route then answers 404) and cancels it if it is still
// running. Its job and chunks stay, readable through /v1/jobs, until the
// retention policy removes them: chunks are append-only.
func (s *Server) Delete(w http.ResponseWriter, r *http.Request) {
	rec, err := s.record(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tenant := s.principal(r.Context()).Tenant
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	if !store.Terminal(rec.Status) {
		if _, err := s.store.RequestCancel(ctx, tenant, rec.JobID); err != nil {
			s.readError(w, r, err)
			return
		}
	}
	if err := s.store.DeleteResponse(ctx, tenant, rec.JobID); err != nil {
		s.readError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Deleted{ID: responseID(rec.JobID), Object: "response", Deleted: true})
}

// InputItemList is the body of GET /v1/responses/{id}/input_items.
type InputItemList struct {
	Object  string      `json:"object"`
	Data    []InputItem `json:"data"`
	FirstID *string     `json:"first_id"`
	LastID  *string     `json:"last_id"`
	HasMore bool        `json:"has_more"`
}

// InputItems serves GET /v1/responses/{id}/input_items: the input items,
// newest first unless order=asc, limit (1 to 100, default 20) at a time
// after the item id in after.
func (s *Server) InputItems(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			s.writeError(w, r, invalid("limit", "invalid_value", "Invalid 'limit': want an integer between 1 and 100, got %q.", truncate(v, 64)))
			return
		}
		limit = n
	}
	order := q.Get("order")
	switch order {
	case "":
		order = "desc"
	case "asc", "desc":
	default:
		s.writeError(w, r, invalid("order", "invalid_value", "Invalid 'order': want asc or desc, got %q.", truncate(order, 64)))
		return
	}
	id, raw, err := parseID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	input, err := s.store.ResponseInput(ctx, s.principal(r.Context()).Tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, notFound(raw))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var items []InputItem
	if err := json.Unmarshal(input, &items); err != nil {
		s.writeError(w, r, fmt.Errorf("decode response %s input: %w", id, err))
		return
	}
	base := strings.TrimPrefix(responseID(id), idPrefix)
	for i := range items {
		items[i].ID = inputItemID(items[i].Type, base, i)
	}
	if order == "desc" {
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	}
	if after := q.Get("after"); after != "" {
		k := -1
		for i, it := range items {
			if it.ID == after {
				k = i
				break
			}
		}
		if k < 0 {
			s.writeError(w, r, invalid("after", "invalid_value", "Invalid 'after': no input item %q in this response.", truncate(after, 80)))
			return
		}
		items = items[k+1:]
	}
	out := InputItemList{Object: "list", Data: items}
	if len(items) > limit {
		out.Data, out.HasMore = items[:limit], true
	}
	if out.Data == nil {
		out.Data = []InputItem{}
	}
	if n := len(out.Data); n > 0 {
		out.FirstID, out.LastID = &out.Data[0].ID, &out.Data[n-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

func inputItemID(typ, base string, i int) string {
	prefix := "msg"
	switch typ {
	case "function_call":
		prefix = "fc"
	case "function_call_output":
		prefix = "fco"
	}
	return prefix + "_" + base + "_in" + strconv.Itoa(i)
}

// readError answers a failed database operation on an existing response:
// nothing when the client has gone, else WriteError.
func (s *Server) readError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, notFound(chi.URLParam(r, "id")))
		return
	}
	s.writeError(w, r, err)
}

// How a stream rides out a database outage: reads are retried with backoff
// between retryMin and retryMax for up to retryFor, then the stream ends
// (the client resumes with starting_after).
const (
	retryMin = 100 * time.Millisecond
	retryMax = 2 * time.Second
	retryFor = time.Minute
)

// run derives rec's events from chunk 0 on, handing each batch to send
// (which may be nil) with whether more chunks are ready to read at once.
// With follow it waits for more until the terminal event, the end of ctx,
// or a drain; without, it stops after what is stored. It returns the job
// status it saw last.
//
// Reads take pageSize chunks each: a replay of a whole response is
// one statement per pageSize chunks, whatever the number of events.
func (s *Server) run(ctx context.Context, tenant string, rec store.ResponseRecord, d *respevent.Deriver, follow bool, send func(evs []respevent.Event, more bool) error) (string, error) {
	p := stream.Params{Tenant: tenant, JobID: rec.JobID, Limit: s.pageSize}
	status := rec.Status
	evs := d.Open()
	var failing time.Time
	backoff := retryMin
	for {
		snap, err := s.read(ctx, p)
		if err != nil {
			if !follow || ctx.Err() != nil || !(store.Unavailable(err) || errors.Is(err, context.DeadlineExceeded)) || s.drain.Draining() {
				return status, err
			}
			if failing.IsZero() {
				failing = time.Now()
				s.log.Warn("responses stream: database unavailable; retrying", "job", rec.JobID, "err", err)
			}
			if time.Since(failing) > retryFor {
				return status, err
			}
			if send != nil {
				if err := send(evs, false); err != nil {
					return status, err
				}
				evs = evs[:0]
			}
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			backoff = min(2*backoff, retryMax)
			continue
		}
		failing, backoff = time.Time{}, retryMin
		status = snap.Status
		if status != store.StatusQueued {
			evs = append(evs, d.Start()...)
		}
		for _, c := range snap.Chunks {
			evs = append(evs, d.Feed(c)...)
			p.From = c.Seq + 1
		}
		if snap.Terminal() && !snap.More {
			evs = append(evs, d.End(snap.Status, snap.FinishReason)...)
		}
		if send != nil {
			if err := send(evs, snap.More); err != nil {
				return status, err
			}
		}
		evs = evs[:0]
		if d.Done() || (!snap.More && (!follow || s.drain.Draining())) {
			return status, nil
		}
		p.Wait = s.cfg.SSEKeepAlive
		if snap.More {
			p.Wait = 0
		}
	}
}

// serveEvents streams rec's events after sequence number after as
// Server-Sent Events (event: is the event's type), until the terminal
// event.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request, rec store.ResponseRecord, d *respevent.Deriver, after int64) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var buf []byte
	send := func(evs []respevent.Event, more bool) error {
		// Each write may wait a keep-alive interval; the server's
		// WriteTimeout would otherwise cut long streams.
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.SSEKeepAlive + 30*time.Second))
		buf = buf[:0]
		for _, e := range evs {
			if int64(e.Seq) > after {
				buf = e.AppendSSE(buf)
			}
		}
		if len(buf) == 0 {
			if more {
				return nil
			}
			buf = append(buf, ": keep-alive\n\n"...)
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		return rc.Flush()
	}
	if _, err := s.run(r.Context(), s.principal(r.Context()).Tenant, rec, d, true, send); err != nil && r.Context().Err() == nil {
		s.log.Warn("responses stream", "job", rec.JobID, "err", err)
	}
}
