package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// What a read recorded as an 'accessed' event read first in its hour (the
// event's reason).
const (
	// AccessChunks: the job's chunks (long-poll, SSE, SEMOSS
	// pixelJobStreaming, a Response's stream).
	AccessChunks = "chunks"
	// AccessPartial: SEMOSS /engine/partial, the output so far.
	AccessPartial = "partial"
	// AccessTranscript: GET /v1/jobs/{id}/transcript.
	AccessTranscript = "transcript"
	// AccessAudit: the job's audit trail (GET /v1/jobs/{id}/audit).
	AccessAudit = "audit"
	// AccessVerify: the job's chain verified (GET /v1/jobs/{id}/verify).
	AccessVerify = "verify"
	// AccessResponse: the job's Response object (GET /v1/responses/{id}).
	AccessResponse = "response"
	// AccessInput: a Response's input items.
	AccessInput = "input_items"
	// AccessResult: a SEMOSS pixel's result (/engine/result, runPixel).
	AccessResult = "result"
)

// Defaults for the access record (Config).
const (
	// DefaultAccessTimeout bounds recording one access: a read never waits
	// longer for its record, and goes on without it.
	DefaultAccessTimeout = 2 * time.Second
	// DefaultAccessCache is how many (actor, job) pairs the in-process
	// access cache remembers (about 100 bytes each).
	DefaultAccessCache = 100_000
)

// maxAccessRequest bounds the request line an access records.
const maxAccessRequest = 200

// accessKey is one reader of one job.
type accessKey struct {
	actor string
	job   uuid.UUID
}

// accessCache remembers which (actor, job) pairs have their access recorded
// for the current hour, so that a client polling a job costs one statement
// an hour, not one per poll. It only spares statements: the database
// decides (job_access's primary key), so a forgotten pair costs a statement
// that writes nothing, and every node may hold its own cache.
type accessCache struct {
	max int

	mu sync.Mutex
	// until is the end of the database's hour the pair was recorded (or
	// found recorded) in; the pair is asked again from then on, by this
	// process's clock. With this clock δ behind the database's, reads in
	// the first δ of an hour go unrecorded only when no read follows in
	// that hour; δ ahead, reads in the last δ of an hour cost a statement
	// each (which writes nothing).
	until map[accessKey]time.Time
}

func newAccessCache(max int) *accessCache {
	return &accessCache{max: max, until: map[accessKey]time.Time{}}
}

// fresh reports whether k's access is recorded for the hour of now.
func (c *accessCache) fresh(k accessKey, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return now.Before(c.until[k])
}

// remember keeps k recorded until until. When full, it forgets the pairs
// whose hour has passed, or, if none has, everything (each then costs one
// statement that writes nothing).
func (c *accessCache) remember(k accessKey, until, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.until[k]; !ok && len(c.until) >= c.max {
		for k, u := range c.until {
			if !now.Before(u) {
				delete(c.until, k)
			}
		}
		if len(c.until) >= c.max {
			clear(c.until)
		}
	}
	c.until[k] = until
}

// len is the number of pairs remembered.
func (c *accessCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.until)
}

// readsRecorded reports whether a's reads are recorded: those of API
// clients (an API key, or a dev-mode tenant), not of workers, rescuers,
// retention or the CLI (which sets no actor).
func (a Actor) readsRecorded() bool {
	return strings.HasPrefix(a.Name, "api_key:") || strings.HasPrefix(a.Name, "tenant:")
}

// NoteAccess records that the API client in ctx (ActorFrom) read the
// content of tenant's job id (what: AccessChunks, ...), as an 'accessed'
// event in the job's audit trail, at most once per client, job and UTC
// hour (JobAccessRecord in sql/queries/access.sql). Every read of a job's
// content by a client passes through it: the store's read functions call
// it after a successful read, and stream.Reader, whose reads may be served
// from memory or by a statement shared by many readers, calls it after the
// first snapshot of each Read. Reads without a client (workers, the CLI)
// record nothing, and neither does a read of a job that is not tenant's.
//
// It never fails the read: the record is written under its own deadline
// (Config.AccessTimeout), even when the client has gone, and a failure is
// logged. After the first record of an hour, a client's reads of the job
// cost no statement for the rest of that hour (accessCache).
func (s *Store) NoteAccess(ctx context.Context, tenant string, id uuid.UUID, what string) {
	a := ActorFrom(ctx)
	if !a.readsRecorded() {
		return
	}
	k := accessKey{actor: a.Name, job: id}
	if s.access.fresh(k, s.now()) {
		return
	}
	req := truncateText(a.Request, maxAccessRequest)
	if CheckText("request", req) != nil {
		req = "" // the HTTP layer sends it escaped; never refuse the record for it
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.AccessTimeout)
	defer cancel()
	row, err := s.q.JobAccessRecord(rctx, s.pool, dbsqlc.JobAccessRecordParams{
		Actor: a.Name, JobID: id, Tenant: tenant, Reason: what, Request: req,
	})
	if err != nil {
		s.cfg.Logger.Warn("recording a read of a job failed; the read goes on unrecorded",
			"job", id, "actor", a.Name, "what", what, "err", err)
		return
	}
	s.access.remember(k, row.Hour.Add(time.Hour), s.now())
}

// ExportFilter is what an export selected: the jobs named, or a tenant's
// jobs created since a time.
type ExportFilter struct {
	IDs    []uuid.UUID
	Tenant string
	Since  time.Time
}

// RecordExport records an export of jobs' records (jobstream export) in
// admin_events: event 'export', the actor the connection names
// (jobstream.actor: the person running the command) and, in detail, the
// filter, the number of jobs exported and whether the export completed.
// Only the database owner may insert admin events. It returns the event's
// seq.
func (s *Store) RecordExport(ctx context.Context, f ExportFilter, jobs int, complete bool) (int64, error) {
	d := struct {
		Tenant   *string     `json:"tenant"`
		Since    *time.Time  `json:"since"`
		IDs      []uuid.UUID `json:"ids"`
		Jobs     int         `json:"jobs"`
		Complete bool        `json:"complete"`
	}{IDs: f.IDs, Jobs: jobs, Complete: complete}
	if f.Tenant != "" {
		d.Tenant = &f.Tenant
	}
	if !f.Since.IsZero() {
		since := f.Since.UTC()
		d.Since = &since
	}
	detail, err := json.Marshal(d)
	if err != nil {
		return 0, fmt.Errorf("record export: %w", err)
	}
	seq, err := s.q.ExportRecord(ctx, s.pool, dbsqlc.ExportRecordParams{Tenant: f.Tenant, Subject: f.Tenant, Detail: detail})
	if err != nil {
		return 0, fmt.Errorf("record export: %w", err)
	}
	return seq, nil
}
