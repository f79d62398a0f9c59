package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Raw group commit: the baseline of `jobstream bench --compare raw`.
//
// RunRaw writes the same load as Run (Streams generations of Tokens tokens
// at Rate tokens/s, one after another for Duration) straight into the same
// job_chunks table, with what PostgreSQL's own machinery allows and nothing
// more: every RawFlushWindow one transaction inserts all buffered rows
// (the same unnest INSERT and row shape as jobstream's writer) and sends
// one NOTIFY per ~200 job ids; one LISTEN connection wakes a dispatcher
// that reads every woken job's new rows in one statement and hands them to
// its readers in memory. There is no HTTP, no lease, no fence and no
// heartbeat. Its figures are what this machine's PostgreSQL can do for the
// load: jobstream's are reported as a ratio of them.

// RawFlushWindow is the raw load's time between commits, and RawMaxBatch
// the most rows one commit takes (jobstream's default batch cap): a
// backlog is written in batches of that size one after another, not in one
// ever larger transaction.
const (
	RawFlushWindow = 10 * time.Millisecond
	RawMaxBatch    = 4000
)

// rawChannel is the raw load's NOTIFY channel, apart from jobstream's so
// that no server reacts to it.
const rawChannel = "jobstream_bench_raw"

// ModeRaw and WriteModeRaw name the raw load's Result.
const (
	ModeRaw      = "raw"
	WriteModeRaw = "raw group commit"
)

type rawRow struct {
	job  *rawJob
	seq  int32
	data []byte
}

// rawJob is one generation of the raw load and its readers' state.
type rawJob struct {
	id       uuid.UUID
	produced atomic.Int64 // rows appended to the buffer
	// Owned by the dispatcher:
	next    int // the readers' next seq
	readers []*tracker
	done    bool // produced everything
	prev    []byte
}

type rawRun struct {
	cfg  Config
	pool *pgxpool.Pool
	// insert is the batch statement for this schema (see rawInsert).
	insert string
	hashed bool

	mu     sync.Mutex
	buf    []rawRow
	jobs   map[uuid.UUID]*rawJob
	all    []*rawJob
	wake   chan struct{}
	dirty  map[uuid.UUID]bool
	dmu    sync.Mutex
	tokens atomic.Int64

	// winFrom and winTo are the latency window, Unix µs.
	winFrom, winTo int64

	commits, commitNS, rows, reads atomic.Int64
	errs                           []string
	failed                         int
}

// RunRaw runs the raw group-commit load of cfg (its Streams, Rate, Tokens,
// Readers, Duration, Warmup and Ramp; Mode and the server settings do not
// apply) on cfg.DatabaseURL, which must hold jobstream's schema (a Run on
// it migrates it) and be a bench database: its tables are emptied.
func RunRaw(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, err
	}
	pc, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return Result{}, fmt.Errorf("parse database URL: %w", err)
	}
	if !strings.HasPrefix(pc.ConnConfig.Database, DefaultDatabase) {
		return Result{}, fmt.Errorf("the bench empties its database's tables: its name must start with %q, got %q", DefaultDatabase, pc.ConnConfig.Database)
	}
	pc.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return Result{}, fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	if err := emptyTables(ctx, pool); err != nil {
		return Result{}, err
	}
	defer func() { _ = emptyTables(context.Background(), pool) }()
	insert, hashed, err := rawInsert(ctx, pool)
	if err != nil {
		return Result{}, err
	}
	r := &rawRun{cfg: cfg, pool: pool, insert: insert, hashed: hashed, jobs: map[uuid.UUID]*rawJob{}, wake: make(chan struct{}, 1), dirty: map[uuid.UUID]bool{}}
	return r.run(ctx)
}

// emptyTables empties a bench database. Jobs and chunks refuse TRUNCATE
// (migrations/00040_integrity.sql); the bench connects as the owner of its
// own database, which switches those guards off for the one transaction
// that empties it, as only an owner can.
func emptyTables(ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}) error {
	// The locks TRUNCATE needs, taken first and in its order: taking them
	// one ALTER at a time, then upgrading, deadlocks with a running server.
	// The tables TRUNCATE ... CASCADE reaches guard against it with
	// triggers, which only their owner can switch off.
	if _, err := db.Exec(ctx, `BEGIN;
LOCK TABLE jobs, job_chunks, job_holds IN ACCESS EXCLUSIVE MODE;
ALTER TABLE jobs DISABLE TRIGGER USER;
ALTER TABLE job_chunks DISABLE TRIGGER USER;
ALTER TABLE job_holds DISABLE TRIGGER USER;
TRUNCATE jobs, job_chunks CASCADE;
ALTER TABLE jobs ENABLE TRIGGER USER;
ALTER TABLE job_chunks ENABLE TRIGGER USER;
ALTER TABLE job_holds ENABLE TRIGGER USER;
COMMIT`); err != nil {
		return fmt.Errorf("empty the bench database: %w", err)
	}
	return nil
}

// The raw load's batch statements: jobstream's chunk INSERT for each
// schema it may meet (data jsonb or json; a hash column, the chunk hash
// chain, or none).
const (
	rawInsertJSONB = `INSERT INTO job_chunks (job_id, seq, stream_type, data)
SELECT r.job_id, r.seq, r.stream_type, r.data::jsonb
FROM unnest($1::uuid[], $2::integer[], $3::text[], $4::text[]) AS r(job_id, seq, stream_type, data)`
	rawInsertJSON = `INSERT INTO job_chunks (job_id, seq, stream_type, data)
SELECT r.job_id, r.seq, r.stream_type, r.data::json
FROM unnest($1::uuid[], $2::integer[], $3::text[], $4::text[]) AS r(job_id, seq, stream_type, data)`
	rawInsertHashedJSONB = `INSERT INTO job_chunks (job_id, seq, stream_type, data, hash)
SELECT r.job_id, r.seq, r.stream_type, r.data::jsonb, r.hash
FROM unnest($1::uuid[], $2::integer[], $3::text[], $4::text[], $5::bytea[]) AS r(job_id, seq, stream_type, data, hash)`
	rawInsertHashedJSON = `INSERT INTO job_chunks (job_id, seq, stream_type, data, hash)
SELECT r.job_id, r.seq, r.stream_type, r.data::json, r.hash
FROM unnest($1::uuid[], $2::integer[], $3::text[], $4::text[], $5::bytea[]) AS r(job_id, seq, stream_type, data, hash)`
)

// rawInsert picks the batch statement for the schema at hand; hashed says
// the rows need a hash, a SHA-256 chained per job as jobstream's writer
// computes it.
func rawInsert(ctx context.Context, pool *pgxpool.Pool) (string, bool, error) {
	rows, err := pool.Query(ctx, `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'job_chunks' AND table_schema = current_schema()`)
	if err != nil {
		return "", false, fmt.Errorf("job_chunks columns: %w", err)
	}
	cols := map[string]string{}
	for rows.Next() {
		var n, t string
		if err := rows.Scan(&n, &t); err != nil {
			return "", false, err
		}
		cols[n] = t
	}
	if err := rows.Err(); err != nil {
		return "", false, err
	}
	_, hashed := cols["hash"]
	switch {
	case cols["data"] == "jsonb" && !hashed:
		return rawInsertJSONB, false, nil
	case cols["data"] == "json" && !hashed:
		return rawInsertJSON, false, nil
	case cols["data"] == "jsonb":
		return rawInsertHashedJSONB, true, nil
	case cols["data"] == "json":
		return rawInsertHashedJSON, true, nil
	}
	return "", false, fmt.Errorf("job_chunks.data is %q: is the database migrated?", cols["data"])
}

// execInsert runs the batch statement (one of the constants above).
func (r *rawRun) execInsert(ctx context.Context, tx pgx.Tx, args []any) error {
	var err error
	switch r.insert {
	case rawInsertJSONB:
		_, err = tx.Exec(ctx, rawInsertJSONB, args...)
	case rawInsertJSON:
		_, err = tx.Exec(ctx, rawInsertJSON, args...)
	case rawInsertHashedJSONB:
		_, err = tx.Exec(ctx, rawInsertHashedJSONB, args...)
	case rawInsertHashedJSON:
		_, err = tx.Exec(ctx, rawInsertHashedJSON, args...)
	default:
		err = errors.New("no batch statement")
	}
	return err
}

func (r *rawRun) errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed++
	if len(r.errs) < 20 {
		r.errs = append(r.errs, fmt.Sprintf(format, args...))
	}
}

func (r *rawRun) run(ctx context.Context) (Result, error) {
	cfg := r.cfg
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The listener first: nothing committed after it listens is missed.
	lconn, err := r.pool.Acquire(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("listen: %w", err)
	}
	if _, err := lconn.Exec(ctx, "LISTEN "+rawChannel); err != nil {
		lconn.Release()
		return Result{}, fmt.Errorf("listen: %w", err)
	}
	var bg sync.WaitGroup
	bg.Add(3)
	go func() {
		defer bg.Done()
		defer lconn.Release()
		r.listen(ctx, lconn.Conn())
	}()
	writerStop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() { defer bg.Done(); defer close(writerDone); r.write(ctx, writerStop) }()
	readerStop := make(chan struct{})
	go func() { defer bg.Done(); r.dispatch(ctx, readerStop) }()

	start := time.Now()
	from, end := start.Add(cfg.Warmup), start.Add(cfg.Duration)
	r.winFrom, r.winTo = micros(from), micros(end)
	var gen sync.WaitGroup
	for i := range cfg.Streams {
		gen.Add(1)
		go func() {
			defer gen.Done()
			delay := time.Duration(int64(cfg.Ramp) * int64(i) / int64(cfg.Streams))
			if !sleepCtx(ctx, time.Until(start.Add(delay))) {
				return
			}
			for ctx.Err() == nil && time.Now().Before(end) {
				if err := r.generate(ctx); err != nil {
					r.errorf("raw generation: %v", err)
					return
				}
			}
		}()
	}

	var a, b rawSnap
	if sleepCtx(ctx, time.Until(from)) {
		a = r.snap()
	}
	if sleepCtx(ctx, time.Until(end)) {
		b = r.snap()
	}
	gen.Wait()
	close(writerStop)
	<-writerDone
	// Every row is committed: wait for the readers to have them all.
	deadline := time.Now().Add(60 * time.Second)
	for !r.caughtUp() && time.Now().Before(deadline) && ctx.Err() == nil {
		r.signal()
		sleepCtx(ctx, 10*time.Millisecond)
	}
	close(readerStop)
	cancel()
	bg.Wait()
	return r.result(a, b)
}

type rawSnap struct {
	at                             time.Time
	self                           float64
	pg                             map[int]float64
	tokens                         int64
	commits, commitNS, rows, reads int64
}

func (r *rawRun) snap() rawSnap {
	s := rawSnap{at: time.Now(), tokens: r.tokens.Load(), pg: postgresCPU(),
		commits: r.commits.Load(), commitNS: r.commitNS.Load(), rows: r.rows.Load(), reads: r.reads.Load()}
	s.self, _ = procCPU(os.Getpid())
	return s
}

// generate runs one generation: a job row, then Tokens rows at Rate.
func (r *rawRun) generate(ctx context.Context) error {
	cfg := r.cfg
	j := &rawJob{id: uuid.Must(uuid.NewV7())}
	for range cfg.Readers {
		j.readers = append(j.readers, newTracker())
	}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := r.pool.Exec(qctx, `INSERT INTO jobs (id, tenant, engine, request, status, attempt, lease_owner, lease_expires_at, started_at)
		VALUES ($1, 'bench-raw', 'raw', '{}', 'running', 1, 'bench-raw', now() + interval '1 hour', now())`, j.id)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("insert job: %w", err)
	}
	r.mu.Lock()
	r.jobs[j.id] = j
	r.all = append(r.all, j)
	r.mu.Unlock()
	interval := time.Duration(float64(time.Second) / max(cfg.Rate, 1e-9))
	next := time.Now()
	for seq := range cfg.Tokens {
		if !sleepCtx(ctx, time.Until(next)) {
			return nil
		}
		next = next.Add(interval)
		data := make([]byte, 0, 64)
		data = append(data, `{"content":"tok`...)
		data = strconv.AppendInt(data, int64(seq), 10)
		data = append(data, ` ","emitted_at_us":`...)
		data = strconv.AppendInt(data, time.Now().UnixMicro(), 10)
		data = append(data, '}')
		r.mu.Lock()
		r.buf = append(r.buf, rawRow{job: j, seq: int32(seq), data: data})
		r.mu.Unlock()
		j.produced.Add(1)
	}
	return nil
}

// write commits the buffer every RawFlushWindow until stop, then once more.
func (r *rawRun) write(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(RawFlushWindow)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			for r.flush(ctx) {
			}
			return
		case <-t.C:
			for r.flush(ctx) && r.backlog() > 0 && ctx.Err() == nil {
			}
		}
	}
}

func (r *rawRun) backlog() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.buf)
}

// flush commits up to RawMaxBatch buffered rows; it reports whether rows
// were written. Rows of a failed commit go back in front of the buffer.
func (r *rawRun) flush(ctx context.Context) bool {
	r.mu.Lock()
	n := min(len(r.buf), RawMaxBatch)
	batch := r.buf[:n:n]
	r.buf = r.buf[n:]
	r.mu.Unlock()
	if n == 0 {
		return false
	}
	ids, seqs, types, datas := make([]uuid.UUID, n), make([]int32, n), make([]string, n), make([]string, n)
	var hashes [][]byte
	if r.hashed {
		hashes = make([][]byte, n)
	}
	seen := map[uuid.UUID]bool{}
	var woke []string
	for i, row := range batch {
		ids[i], seqs[i], types[i], datas[i] = row.job.id, row.seq, "content", string(row.data)
		if r.hashed {
			hashes[i] = rawHash(row.job, row.seq, row.data)
		}
		if !seen[row.job.id] {
			seen[row.job.id] = true
			woke = append(woke, row.job.id.String())
		}
	}
	args := []any{ids, seqs, types, datas}
	if r.hashed {
		args = append(args, hashes)
	}
	start := time.Now()
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := pgx.BeginFunc(qctx, r.pool, func(tx pgx.Tx) error {
		if err := r.execInsert(qctx, tx, args); err != nil {
			return err
		}
		for i := 0; i < len(woke); i += 200 {
			if _, err := tx.Exec(qctx, "SELECT pg_notify($1, $2)", rawChannel, strings.Join(woke[i:min(i+200, len(woke))], ",")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			r.errorf("raw commit of %d rows: %v", n, err)
		}
		r.mu.Lock()
		r.buf = append(batch, r.buf...)
		r.mu.Unlock()
		return false
	}
	r.commits.Add(1)
	r.commitNS.Add(int64(time.Since(start)))
	r.rows.Add(int64(n))
	return true
}

// rawHash chains a row's hash to its job's previous one, as the hash chain
// does (sha256(prev || seq || 0 || stream_type || 0 || data)): the cost of
// the column's bytes, computed where jobstream computes it.
func rawHash(j *rawJob, seq int32, data []byte) []byte {
	if j.prev == nil {
		s := sha256.Sum256(j.id[:])
		j.prev = s[:]
	}
	h := sha256.New()
	h.Write(j.prev)
	h.Write(strconv.AppendInt(nil, int64(seq), 10))
	h.Write([]byte{0})
	h.Write([]byte("content"))
	h.Write([]byte{0})
	h.Write(data)
	j.prev = h.Sum(nil)
	return j.prev
}

// listen turns notifications into dirty jobs for the dispatcher.
func (r *rawRun) listen(ctx context.Context, conn *pgx.Conn) {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.errorf("raw listen: %v", err)
			}
			return
		}
		r.dmu.Lock()
		for s := range strings.SplitSeq(n.Payload, ",") {
			if id, err := uuid.Parse(s); err == nil {
				r.dirty[id] = true
			}
		}
		r.dmu.Unlock()
		r.signal()
	}
}

func (r *rawRun) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// dispatch reads the new rows of every woken job in one statement and
// delivers them to the job's readers.
func (r *rawRun) dispatch(ctx context.Context, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		r.dmu.Lock()
		dirty := r.dirty
		r.dirty = map[uuid.UUID]bool{}
		r.dmu.Unlock()
		if len(dirty) == 0 {
			continue
		}
		var ids []uuid.UUID
		var froms []int32
		r.mu.Lock()
		for id := range dirty {
			if j := r.jobs[id]; j != nil {
				ids = append(ids, id)
				froms = append(froms, int32(j.next))
			}
		}
		r.mu.Unlock()
		if err := r.read(ctx, ids, froms); err != nil && ctx.Err() == nil {
			r.errorf("raw read: %v", err)
		}
	}
}

var stampKeyBytes = []byte(`"emitted_at_us":`)

func (r *rawRun) read(ctx context.Context, ids []uuid.UUID, froms []int32) error {
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r.reads.Add(1)
	rows, err := r.pool.Query(qctx, `SELECT r.job_id, c.seq, c.data::text
		FROM unnest($1::uuid[], $2::integer[]) AS r(job_id, from_seq)
		CROSS JOIN LATERAL (SELECT seq, data FROM job_chunks WHERE job_id = r.job_id AND seq >= r.from_seq ORDER BY seq) c`, ids, froms)
	if err != nil {
		return err
	}
	defer rows.Close()
	var id uuid.UUID
	var seq int32
	var data []byte
	for rows.Next() {
		if err := rows.Scan(&id, &seq, &data); err != nil {
			return err
		}
		now := time.Now().UnixMicro()
		r.mu.Lock()
		j := r.jobs[id]
		if j != nil && int(seq) >= j.next {
			j.next = int(seq) + 1
		}
		r.mu.Unlock()
		if j == nil {
			continue
		}
		var stamp int64
		if i := bytes.Index(data, stampKeyBytes); i >= 0 {
			rest := data[i+len(stampKeyBytes):]
			k := bytes.IndexByte(rest, '}')
			if k > 0 {
				stamp, _ = strconv.ParseInt(string(bytes.TrimSpace(rest[:k])), 10, 64)
			}
		}
		for _, tr := range j.readers {
			tr.Seq(int(seq))
			tr.Latency(stamp, now, r.winFrom, r.winTo)
		}
		r.tokens.Add(int64(len(j.readers)))
	}
	return rows.Err()
}

func (r *rawRun) caughtUp() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, j := range r.all {
		if int64(j.next) < j.produced.Load() {
			return false
		}
	}
	return true
}

func (r *rawRun) result(a, b rawSnap) (Result, error) {
	cfg := r.cfg
	res := Result{
		Mode: ModeRaw, WriteMode: WriteModeRaw, Streams: cfg.Streams, Readers: cfg.Readers,
		Rate: cfg.Rate, Tokens: cfg.Tokens, WantedTPS: float64(cfg.Streams) * cfg.Rate, BenchCPU: -1,
		QueuedMeanS: -1, QueuedMaxS: -1, // no queue
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	res.Jobs = len(r.all)
	res.Failed = r.failed
	res.Errors = r.errs
	var lat []int32
	for _, j := range r.all {
		for _, tr := range j.readers {
			res.Lost += tr.Lost(int(j.produced.Load()))
			res.Duplicated += tr.dups
			res.Reordered += tr.reordered
			lat = append(lat, tr.lat...)
		}
	}
	res.Samples = len(lat)
	res.LatencyMS = percentiles(lat)
	secs := b.at.Sub(a.at).Seconds()
	if secs <= 0 || a.pg == nil || b.pg == nil {
		return res, errors.New("the raw load ended before its measurement window did")
	}
	res.Seconds = secs
	res.DeliveredTPS = float64(b.tokens-a.tokens) / secs
	res.WrittenTPS = float64(b.rows-a.rows) / secs
	res.CommitsPerS = float64(b.commits-a.commits) / secs
	if c := b.commits - a.commits; c > 0 {
		res.CommitMS = float64(b.commitNS-a.commitNS) / 1e6 / float64(c)
		res.BatchRows = float64(b.rows-a.rows) / float64(c)
	}
	res.ReadQueriesPerS = float64(b.reads-a.reads) / secs
	res.NotifiesPerS = res.CommitsPerS // one per commit up to 200 jobs
	if total := r.tokens.Load(); total > 0 {
		res.RequestsPerToken = float64(r.reads.Load()) / float64(total)
	}
	res.ServerCPU = (b.self - a.self) / secs
	res.PostgresCPU = cpuDelta(a.pg, b.pg) / secs
	res.Load = loadAvg()
	res.setCPUPerToken()
	return res, nil
}
