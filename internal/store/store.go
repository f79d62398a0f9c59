package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound: no such job, or it belongs to another tenant (the two are
	// deliberately indistinguishable).
	ErrNotFound = errors.New("not found")
	// ErrLeaseLost: the worker no longer holds the job's lease; its writes
	// were not applied.
	ErrLeaseLost = errors.New("lease lost")
	// ErrKeyRevoked: the API key a job was submitted with is revoked;
	// nothing was stored.
	ErrKeyRevoked = errors.New("the API key was revoked")
)

// NOTIFY channels. Payloads are small: job ids, never chunk data.
const (
	// ChannelChunks carries comma-separated ids of jobs that gained chunks
	// or changed status in a committed transaction.
	ChannelChunks = "jobstream_chunks"
	// ChannelJobs is pinged when a job is queued, to wake idle workers.
	ChannelJobs = "jobstream_jobs"
	// ChannelCancel carries the id of a job whose cancellation was requested.
	ChannelCancel = "jobstream_cancel"
)

// maxNotifyPayload stays under PostgreSQL's 8000-byte NOTIFY payload limit.
const maxNotifyPayload = 7900

// Job statuses.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// Terminal reports whether status is final.
func Terminal(status string) bool {
	return status == StatusCompleted || status == StatusFailed || status == StatusCancelled
}

// DefaultHotOperationTimeout is Config.HotOperationTimeout's default (River's
// HotOperationTimeout).
const DefaultHotOperationTimeout = 10 * time.Second

// Config configures a Store.
type Config struct {
	// HotOperationTimeout bounds each of the workers' hot-path operations:
	// Claim, Heartbeat, WriteBatch, RescueExpired and HandBack. Each gives
	// up after it, and its caller retries: a lock held elsewhere or a
	// half-open connection must never stall a worker for good. Callers may
	// pass a shorter deadline. Defaults to 10 s.
	HotOperationTimeout time.Duration
	// AccessTimeout bounds recording a client's read of a job (NoteAccess):
	// the read goes on without its record after it. Defaults to
	// DefaultAccessTimeout.
	AccessTimeout time.Duration
	// AccessCache is how many (client, job) pairs whose reads are
	// recorded for the hour this Store remembers, to spare their
	// statement. Defaults to DefaultAccessCache.
	AccessCache int
	// Logger logs what the store gets past without failing its caller (a
	// read whose record failed). Defaults to slog.Default().
	Logger *slog.Logger
}

// Store wraps a connection pool.
type Store struct {
	pool *pgxpool.Pool
	q    *dbsqlc.Queries
	cfg  Config
	// access remembers the reads recorded this hour (NoteAccess).
	access *accessCache
	// now is the clock of the access cache (tests move it).
	now func() time.Time
}

// New returns a Store using pool, with the default Config.
func New(pool *pgxpool.Pool) *Store { return NewWithConfig(pool, Config{}) }

// NewWithConfig returns a Store using pool.
func NewWithConfig(pool *pgxpool.Pool, cfg Config) *Store {
	cfg.HotOperationTimeout = cmp.Or(cfg.HotOperationTimeout, DefaultHotOperationTimeout)
	cfg.AccessTimeout = cmp.Or(cfg.AccessTimeout, DefaultAccessTimeout)
	cfg.AccessCache = max(cmp.Or(cfg.AccessCache, DefaultAccessCache), 1)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Store{pool: pool, q: dbsqlc.New(), cfg: cfg, access: newAccessCache(cfg.AccessCache), now: time.Now}
}

// hot bounds a hot-path operation by HotOperationTimeout.
func (s *Store) hot(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.HotOperationTimeout)
}

// HotOperationTimeout is the bound of each hot-path operation
// (Config.HotOperationTimeout, with its default applied): callers that
// bound such an operation themselves (the worker's heartbeat) stay within
// it.
func (s *Store) HotOperationTimeout() time.Duration { return s.cfg.HotOperationTimeout }

// Pool returns the underlying pool (for health checks and metrics).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Job is a job record.
type Job struct {
	ID                uuid.UUID
	Tenant            string
	APIKeyID          *uuid.UUID
	Engine            string
	RoomID            string
	Request           Request
	Status            string
	FinishReason      string
	Error             json.RawMessage
	Usage             json.RawMessage
	Attempt           int
	MaxAttempts       int
	CancelRequestedAt *time.Time
	CreatedAt         time.Time
	StartedAt         *time.Time
	FinishedAt        *time.Time
	// ChunkCount and FinalHash seal the hash chain when the job ends
	// (internal/chain); nil before.
	ChunkCount *int
	FinalHash  []byte
	// ChainVersion is the definition of the chain's seed (chain.SeedOf);
	// RequestSHA256 is the SHA-256 of the request's stored text, which
	// version 2 seeds cover. Both are set by the database at submission.
	ChainVersion  int
	RequestSHA256 []byte
	// Erased is set when the job's content was erased (Erase): its
	// request and chunks' data are then {"erased":true}.
	Erased *Erasure
}

// Erasure is who erased a job's content, when and why.
type Erasure struct {
	At         time.Time
	By, Reason string
}

// Request is what was submitted, stored as json (its text verbatim, which
// the chain's seed covers).
type Request struct {
	Command    string                     `json:"command,omitempty"`
	System     string                     `json:"system,omitempty"`
	Messages   json.RawMessage            `json:"messages,omitempty"`
	Params     map[string]json.RawMessage `json:"params,omitempty"`
	UseHistory bool                       `json:"use_history,omitempty"`
}

func jobFromRow(r dbsqlc.Job) (Job, error) {
	j := Job{
		ID:                r.ID,
		Tenant:            r.Tenant,
		APIKeyID:          r.ApiKeyID,
		Engine:            r.Engine,
		Status:            r.Status,
		Attempt:           int(r.Attempt),
		MaxAttempts:       int(r.MaxAttempts),
		CancelRequestedAt: r.CancelRequestedAt,
		CreatedAt:         r.CreatedAt,
		StartedAt:         r.StartedAt,
		FinishedAt:        r.FinishedAt,
		Error:             nullJSON(r.Error),
		Usage:             nullJSON(r.Usage),
		FinalHash:         r.FinalHash,
		ChainVersion:      int(r.ChainVersion),
		RequestSHA256:     r.RequestSha256,
	}
	if r.ChunkCount != nil {
		n := int(*r.ChunkCount)
		j.ChunkCount = &n
	}
	if r.ErasedAt != nil {
		j.Erased = &Erasure{At: *r.ErasedAt, By: deref(r.ErasedBy), Reason: deref(r.EraseReason)}
	}
	if r.RoomID != nil {
		j.RoomID = *r.RoomID
	}
	if r.FinishReason != nil {
		j.FinishReason = *r.FinishReason
	}
	if err := json.Unmarshal(r.Request, &j.Request); err != nil {
		return Job{}, fmt.Errorf("decode job %s request: %w", r.ID, err)
	}
	return j, nil
}

// nullJSON reads a jsonb column whose absence may be stored as JSON null
// (JobFinishMany writes 'null' for a finish without an error or usage):
// both read back as nil, so callers can test len(Error) > 0.
func nullJSON(b []byte) json.RawMessage {
	if b == nil || string(b) == "null" {
		return nil
	}
	return b
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// SubmitParams describes a new job.
type SubmitParams struct {
	Tenant      string
	APIKeyID    *uuid.UUID
	Engine      string
	RoomID      string
	Request     Request
	MaxAttempts int // defaults to DefaultMaxAttempts
	// Pixel, if set, is the job's SEMOSS pixel metadata, stored in the
	// same transaction: a pixel job never exists without it.
	Pixel *PixelJob
}

// Check returns an *UnstorableError naming the first value of p that
// PostgreSQL would refuse (see CheckText, CheckJSON). Submit checks p
// before anything is written; handlers call it to answer 400 early.
func (p SubmitParams) Check() error {
	texts := []struct{ field, value string }{
		{"tenant", p.Tenant}, {"engine", p.Engine}, {"room_id", p.RoomID},
		{"command", p.Request.Command}, {"system", p.Request.System},
	}
	if p.Pixel != nil {
		texts = append(texts, struct{ field, value string }{"insightId", p.Pixel.InsightID},
			struct{ field, value string }{"expression", p.Pixel.Expression})
	}
	for _, t := range texts {
		if err := CheckText(t.field, t.value); err != nil {
			return err
		}
	}
	if len(p.Request.Messages) > 0 {
		if err := CheckJSON("messages", p.Request.Messages); err != nil {
			return err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(p.Request.Params)) {
		if err := CheckText("params key "+strconv.Quote(truncateText(k, 64)), k); err != nil {
			return err
		}
		if err := CheckJSON("params."+truncateText(k, 64), p.Request.Params[k]); err != nil {
			return err
		}
	}
	return nil
}

// DefaultMaxAttempts is how many times a job is claimed before the rescuer
// gives up on it, when SubmitParams.MaxAttempts is not set. Only jobs whose
// worker died before writing a chunk are ever claimed again.
const DefaultMaxAttempts = 3

// Submit stores a queued job (and its pixel metadata, if any) and wakes
// idle workers, in one transaction. A value PostgreSQL would refuse is an
// *UnstorableError (ErrUnstorable), and nothing is written.
func (s *Store) Submit(ctx context.Context, p SubmitParams) (Job, error) {
	return s.submit(ctx, p, nil)
}

// submit is Submit; also, if set, writes more rows about the job in the
// same transaction (SubmitResponse).
func (s *Store) submit(ctx context.Context, p SubmitParams, also func(tx pgx.Tx, id uuid.UUID) error) (Job, error) {
	if err := p.Check(); err != nil {
		return Job{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Job{}, fmt.Errorf("new job id: %w", err)
	}
	req, err := json.Marshal(p.Request)
	if err != nil {
		return Job{}, fmt.Errorf("encode request: %w", err)
	}
	var job Job
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		row, err := s.q.JobInsert(ctx, tx, dbsqlc.JobInsertParams{
			ID:          id,
			Tenant:      p.Tenant,
			ApiKeyID:    p.APIKeyID,
			Engine:      p.Engine,
			RoomID:      strPtr(p.RoomID),
			Request:     req,
			MaxAttempts: int32(max(cmp.Or(p.MaxAttempts, DefaultMaxAttempts), 1)),
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrKeyRevoked
		}
		if err != nil {
			return err
		}
		if job, err = jobFromRow(row); err != nil {
			return err
		}
		if px := p.Pixel; px != nil {
			err := s.q.PixelJobInsert(ctx, tx, dbsqlc.PixelJobInsertParams{
				JobID: id, InsightID: px.InsightID, Expression: px.Expression, Sync: px.Sync,
			})
			if err != nil {
				return fmt.Errorf("record pixel job: %w", err)
			}
		}
		if also != nil {
			if err := also(tx, id); err != nil {
				return err
			}
		}
		return s.q.Notify(ctx, tx, dbsqlc.NotifyParams{Channel: ChannelJobs, Payload: id.String()})
	})
	if errors.Is(err, ErrKeyRevoked) {
		return Job{}, ErrKeyRevoked
	}
	if err != nil {
		return Job{}, fmt.Errorf("submit job: %w", err)
	}
	return job, nil
}

// Get returns a tenant's job.
func (s *Store) Get(ctx context.Context, tenant string, id uuid.UUID) (Job, error) {
	row, err := s.q.JobGet(ctx, s.pool, dbsqlc.JobGetParams{ID: id, Tenant: tenant})
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, ErrNotFound
	}
	if err != nil {
		return Job{}, fmt.Errorf("get job %s: %w", id, err)
	}
	return jobFromRow(row)
}

// ListParams filters and pages a tenant's jobs, newest first.
type ListParams struct {
	Tenant   string
	Status   string     // optional
	Engine   string     // optional
	BeforeID *uuid.UUID // keyset cursor: the last id of the previous page
	// Since and Until bound created_at: Since <= created_at < Until
	// (either optional).
	Since, Until *time.Time
	Limit        int
}

// List returns one page of a tenant's jobs.
func (s *Store) List(ctx context.Context, p ListParams) ([]Job, error) {
	rows, err := s.q.JobList(ctx, s.pool, dbsqlc.JobListParams{
		Tenant:   p.Tenant,
		Status:   strPtr(p.Status),
		Engine:   strPtr(p.Engine),
		BeforeID: p.BeforeID,
		Since:    p.Since,
		Until:    p.Until,
		Max:      int64(p.Limit),
	})
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	jobs := make([]Job, 0, len(rows))
	for _, r := range rows {
		j, err := jobFromRow(r)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// notifyIDs sends ids on channel in as few NOTIFYs as fit the payload limit.
func (s *Store) notifyIDs(ctx context.Context, tx pgx.Tx, channel string, ids []uuid.UUID) error {
	payloads := notifyPayloads(ids)
	if len(payloads) == 0 {
		return nil
	}
	// One statement, however many payloads: each is a round trip saved
	// in the writer's transaction.
	return s.q.NotifyMany(ctx, tx, dbsqlc.NotifyManyParams{Channel: channel, Payloads: payloads})
}

// notifyPayloads splits ids into comma-separated payloads that each fit a
// NOTIFY.
func notifyPayloads(ids []uuid.UUID) []string {
	var (
		b        strings.Builder
		payloads []string
	)
	for _, id := range ids {
		if b.Len()+37 > maxNotifyPayload {
			payloads = append(payloads, b.String())
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(id.String())
	}
	if b.Len() > 0 {
		payloads = append(payloads, b.String())
	}
	return payloads
}

// ParseIDs parses a ChannelChunks payload. Malformed ids are skipped.
func ParseIDs(payload string) []uuid.UUID {
	parts := strings.Split(payload, ",")
	ids := make([]uuid.UUID, 0, len(parts))
	for _, p := range parts {
		if id, err := uuid.Parse(p); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}
