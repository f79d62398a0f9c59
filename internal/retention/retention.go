// Package retention removes finished jobs and their chunks once their
// tenant's policy says they are old enough, and keeps job_chunks' day
// partitions created ahead of time.
//
// A pass first drops whole day partitions of job_chunks whose every job
// has expired and none is held: a day of chunks goes in one catalog
// operation, with no dead rows for VACUUM. Then it deletes the remaining
// expired jobs (those sharing a day with a job that must stay, those in the
// DEFAULT partition, and the rows of the jobs whose partition went) in
// bounded batches, each its own transaction. Every removed job gets a
// retention_deleted event in job_events, written in the transaction that
// removes its chunks; the events are never deleted.
//
// A job expires when it is finished, is not on legal hold, and is older
// than its tenant's keep_days (retention_policies), else the server-wide
// default (retention_settings), never below the server-wide minimum; 0
// days keeps forever. The database judges all of it, by its own clock: the
// caller passes only who runs the pass, recorded in every event. The SQL
// lives in migrations/00008_retention.sql and 00040_integrity.sql.
package retention

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/store"
)

// Defaults of Config.
const (
	// DefaultInterval is how often serve runs a pass.
	DefaultInterval = time.Hour
	// DefaultPartitionsAhead is how many UTC days of partitions, today
	// included, are kept created ahead.
	DefaultPartitionsAhead = 8
	// DefaultBatchSize is the most jobs one deleting transaction removes.
	DefaultBatchSize = 500
	// opTimeout bounds each statement of a pass: a partition drop waits at
	// most 2 s for its lock, a batch touches at most BatchSize jobs.
	opTimeout = 2 * time.Minute
)

// ErrFutureNow: a deleting pass was asked to judge at a time of the
// caller's choosing.
var ErrFutureNow = errors.New("a deleting pass judges by the database's clock: a chosen time is for dry runs only")

// Options configure one pass.
type Options struct {
	// Now is the time a dry run judges ages against (any time: a dry run
	// may look ahead). A deleting pass always judges by the database's
	// clock and refuses a Now (ErrFutureNow). Defaults to the database's
	// clock.
	Now time.Time
	// RanBy is who runs the pass, recorded in each retention_deleted
	// event: the OS user and host for the CLI, the node for serve.
	RanBy string
	// DryRun reports what the pass would remove and removes nothing.
	DryRun bool
	// BatchSize caps the jobs of one deleting transaction. Defaults to
	// DefaultBatchSize.
	BatchSize int
}

// Partition is a day partition of job_chunks a pass dropped (or would).
type Partition struct {
	Name   string
	Jobs   int64
	Chunks int64
}

// Report says what a pass removed, or would remove in a dry run.
type Report struct {
	Now      time.Time
	Settings store.RetentionSettings
	DryRun   bool
	// Partitions dropped whole.
	Partitions []Partition
	// Jobs deleted one by one, with their chunks.
	Jobs []store.RetainedJob
	// PartitionRows is the number of job rows deleted after their chunks
	// went with a partition (possibly a partition of an earlier pass).
	PartitionRows int
	// Skipped partitions: past the horizon but holding a job that must stay.
	Skipped []store.PartitionPlan
}

// Totals returns the jobs and chunks the report covers.
func (r Report) Totals() (jobs, chunks int64) {
	for _, p := range r.Partitions {
		jobs += p.Jobs
		chunks += p.Chunks
	}
	for _, j := range r.Jobs {
		jobs++
		chunks += j.Chunks
	}
	return jobs, chunks
}

// Print writes the report for people, one line per partition and job.
func (r Report) Print(w io.Writer) {
	verb, part, del := "removed", "dropped partition", "deleted job"
	if r.DryRun {
		verb, part, del = "would remove", "would drop partition", "would delete job"
	}
	policy := "forever"
	if r.Settings.DefaultDays > 0 {
		policy = fmt.Sprintf("%d days", r.Settings.DefaultDays)
	}
	minimum := ""
	if r.Settings.MinDays > 0 {
		minimum = fmt.Sprintf(", minimum %d days", r.Settings.MinDays)
	}
	fmt.Fprintf(w, "retention at %s (default policy: keep %s%s)\n", r.Now.UTC().Format(time.RFC3339), policy, minimum)
	for _, p := range r.Partitions {
		fmt.Fprintf(w, "%s %s: %d jobs, %d chunks\n", part, p.Name, p.Jobs, p.Chunks)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "kept partition %s: %d of its %d jobs must stay (held or within policy)\n", s.Name, s.Keep, s.Jobs)
	}
	for _, j := range r.Jobs {
		fmt.Fprintf(w, "%s %s (tenant %s): %d chunks\n", del, j.ID, j.Tenant, j.Chunks)
	}
	jobs, chunks := r.Totals()
	fmt.Fprintf(w, "%s %d jobs and %d chunks\n", verb, jobs, chunks)
}

// Pass runs one retention pass. It is safe to run concurrently with the
// server; serve makes sure only one node runs it at a time (Service).
func Pass(ctx context.Context, st *store.Store, o Options) (Report, error) {
	if !o.DryRun && !o.Now.IsZero() {
		return Report{}, ErrFutureNow
	}
	o.BatchSize = cmp.Or(o.BatchSize, DefaultBatchSize)
	o.RanBy = cmp.Or(o.RanBy, "unknown")
	rep := Report{Now: o.Now, DryRun: o.DryRun}

	opCtx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var err error
	if rep.Settings, err = st.RetentionSettingsGet(opCtx); err != nil {
		return rep, err
	}
	if rep.Now.IsZero() {
		if rep.Now, err = st.RetentionClock(opCtx); err != nil {
			return rep, err
		}
	}
	plan, err := st.RetentionPlan(opCtx, rep.Now)
	if err != nil {
		return rep, err
	}
	var dropped []store.PartitionPlan
	for _, p := range plan {
		if p.Keep > 0 {
			rep.Skipped = append(rep.Skipped, p)
			continue
		}
		opCtx, cancel := context.WithTimeout(ctx, opTimeout)
		chunks, err := st.RangeChunks(opCtx, p.Lo, p.Hi)
		if err == nil && !o.DryRun {
			var ok bool
			p.Jobs, ok, err = st.RetentionDropPartition(opCtx, p.Name, o.RanBy)
			if err == nil && !ok {
				cancel()
				continue // a hold or its lock got in the way; next pass
			}
		}
		cancel()
		if err != nil {
			return rep, err
		}
		rep.Partitions = append(rep.Partitions, Partition{Name: p.Name, Jobs: p.Jobs, Chunks: chunks})
		dropped = append(dropped, p)
	}

	if o.DryRun {
		return rep, dryRunJobs(ctx, st, rep.Now, o.BatchSize, dropped, &rep)
	}
	for {
		opCtx, cancel := context.WithTimeout(ctx, opTimeout)
		batch, err := st.RetentionDeleteBatch(opCtx, o.BatchSize, o.RanBy)
		cancel()
		if err != nil {
			return rep, err
		}
		for _, j := range batch {
			if j.Recorded {
				rep.PartitionRows++
			} else {
				rep.Jobs = append(rep.Jobs, j)
			}
		}
		if len(batch) < o.BatchSize {
			return rep, nil
		}
	}
}

// dryRunJobs lists the expired jobs outside the partitions a pass would
// drop: those it would delete one by one.
func dryRunJobs(ctx context.Context, st *store.Store, now time.Time, batchSize int, dropped []store.PartitionPlan, rep *Report) error {
	// uuids compare bytewise, in Go as in PostgreSQL.
	inDropped := func(id uuid.UUID) bool {
		for _, p := range dropped {
			if bytes.Compare(id[:], p.Lo[:]) >= 0 && bytes.Compare(id[:], p.Hi[:]) < 0 {
				return true
			}
		}
		return false
	}
	after := uuid.Nil
	for {
		opCtx, cancel := context.WithTimeout(ctx, opTimeout)
		page, err := st.RetentionExpired(opCtx, now, after, batchSize)
		cancel()
		if err != nil {
			return err
		}
		for _, j := range page {
			if !inDropped(j.ID) {
				rep.Jobs = append(rep.Jobs, j)
			}
		}
		if len(page) < batchSize {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// Config configures a Service.
type Config struct {
	// RanBy names this node in the events of its passes. Defaults to
	// "serve".
	RanBy string
	// Interval is the time between passes; negative disables them (the
	// partitions are still created at start). Defaults to DefaultInterval.
	Interval time.Duration
	// PartitionsAhead is how many days of partitions, today included, are
	// created ahead at start and before every pass. Defaults to
	// DefaultPartitionsAhead.
	PartitionsAhead int
	// BatchSize: see Options. Defaults to DefaultBatchSize.
	BatchSize int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// OnPass, if set, is called after every pass this node ran (with
	// ran false when another node held the lock). Tests wait on it.
	OnPass func(rep Report, ran bool, err error)
}

// Service creates partitions ahead and runs retention passes periodically,
// on one node at a time: each pass first takes a PostgreSQL advisory lock,
// and a node that does not get it skips that pass.
type Service struct {
	st  *store.Store
	cfg Config
	log *slog.Logger
}

// New returns a Service on st.
func New(st *store.Store, cfg Config) *Service {
	cfg.Interval = cmp.Or(cfg.Interval, DefaultInterval)
	cfg.PartitionsAhead = cmp.Or(cfg.PartitionsAhead, DefaultPartitionsAhead)
	cfg.BatchSize = cmp.Or(cfg.BatchSize, DefaultBatchSize)
	return &Service{st: st, cfg: cfg, log: cmp.Or(cfg.Logger, slog.Default())}
}

// EnsurePartitions creates the partitions of today and the days ahead that
// do not exist yet.
func (s *Service) EnsurePartitions(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	names, err := s.st.PartitionsEnsure(ctx, time.Now(), s.cfg.PartitionsAhead)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		s.log.Info("created chunk partitions", "partitions", names)
	}
	return nil
}

// Run runs passes every Interval until ctx ends, the first one Interval
// after the start (call EnsurePartitions at start). With passes disabled it
// just waits for ctx, so that callers treat it like any service.
func (s *Service) Run(ctx context.Context) error {
	if s.cfg.Interval < 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		rep, ran, err := s.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("retention pass failed", "err", err)
		}
		if s.cfg.OnPass != nil {
			s.cfg.OnPass(rep, ran, err)
		}
	}
}

// RunOnce runs one pass now if no other node is running one; ran reports
// whether it did.
func (s *Service) RunOnce(ctx context.Context) (rep Report, ran bool, err error) {
	release, ok, err := s.st.RetentionLead(ctx)
	if err != nil || !ok {
		return Report{}, false, err
	}
	defer release()
	if err := s.EnsurePartitions(ctx); err != nil {
		return Report{}, true, err
	}
	rep, err = Pass(ctx, s.st, Options{RanBy: cmp.Or(s.cfg.RanBy, "serve"), BatchSize: s.cfg.BatchSize})
	if err == nil {
		if jobs, chunks := rep.Totals(); jobs > 0 || rep.PartitionRows > 0 {
			s.log.Info("retention pass", "partitions", len(rep.Partitions), "jobs", jobs, "chunks", chunks)
		}
	}
	return rep, true, err
}
