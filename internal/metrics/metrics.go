// Package metrics defines jobstream's Prometheus metrics and serves them at
// /metrics. Components do not import it: they expose hooks (the chunk
// writer's OnFlush, the stream reader's Hooks) that internal/server connects
// to a Metrics. The one exception is ProviderFailures, a counter engine
// providers may bump directly.
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every series.
const Namespace = "jobstream"

// ProviderFailures counts failed model calls by engine id and error type
// ("rate_limited", "timeout", "upstream_5xx", ...). It is a package-level
// counter so providers can report failures without a dependency passed
// through the engine interface:
//
//	metrics.ProviderFailures.WithLabelValues(engineID, "rate_limited").Inc()
//
// New registers it on every registry it is given.
var ProviderFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: Namespace,
	Name:      "provider_failures_total",
	Help:      "Failed model provider calls, by engine and error type.",
}, []string{"engine", "type"})

// Metrics holds jobstream's series.
type Metrics struct {
	reg *prometheus.Registry

	mu    sync.Mutex
	pools *poolCollector

	// Write path (the chunk writer).
	ChunksWritten  prometheus.Counter
	Finishes       prometheus.Counter
	Commits        *prometheus.CounterVec // result=ok|error
	BatchRows      prometheus.Histogram
	BatchJobs      prometheus.Histogram
	CommitSeconds  prometheus.Histogram
	Notifies       prometheus.Counter
	LeasesLostRows prometheus.Counter
	AppendWaits    *prometheus.HistogramVec // outcome=room|gave_up

	// Read path.
	Notifications prometheus.Counter
	Wakeups       prometheus.Counter
	ReadQueries   *prometheus.CounterVec // kind=single|many
	ReadPairs     prometheus.Histogram
	ReadRows      prometheus.Counter
	ReadSeconds   prometheus.Histogram
	ReadsSkipped  prometheus.Counter
	ReadsLocal    prometheus.Counter
	LongPoll      *prometheus.HistogramVec // outcome=data|empty|terminal|error
}

// New returns a Metrics registered on a fresh registry, with Go runtime and
// process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		ChunksWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "writer", Name: "chunks_total",
			Help: "Chunks committed by the chunk writer (terminal chunks included).",
		}),
		Finishes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "writer", Name: "finishes_total",
			Help: "Terminal status updates committed by the chunk writer.",
		}),
		Commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "writer", Name: "commits_total",
			Help: "Chunk writer transactions, by result (ok, error).",
		}, []string{"result"}),
		BatchRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "writer", Name: "batch_rows",
			Help:    "Rows per chunk writer transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		BatchJobs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "writer", Name: "batch_jobs",
			Help:    "Jobs per chunk writer transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		CommitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "writer", Name: "commit_seconds",
			Help:    "Duration of a chunk writer transaction (fence, insert, notify, commit).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		Notifies: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "writer", Name: "notifies_total",
			Help: "NOTIFYs sent by committed chunk writer transactions.",
		}),
		LeasesLostRows: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "writer", Name: "fenced_jobs_total",
			Help: "Jobs whose rows a transaction dropped because their lease was lost.",
		}),
		AppendWaits: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "writer", Name: "append_wait_seconds",
			Help:    "Time a model stream waited for room in the chunk writer's full buffer (backpressure), by outcome: room, or gave_up (the job failed as overloaded, or ended).",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
		Notifications: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "listener", Name: "notifications_total",
			Help: "Chunk notifications received by this process's LISTEN connection.",
		}),
		Wakeups: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "listener", Name: "wakeups_total",
			Help: "Waiters woken by chunk notifications.",
		}),
		ReadQueries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "reader", Name: "queries_total",
			Help: "Chunk read statements, by kind (many = one coalesced statement for several readers).",
		}, []string{"kind"}),
		ReadPairs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "reader", Name: "query_pairs",
			Help:    "(job, offset) pairs read per statement.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		ReadRows: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "reader", Name: "rows_total",
			Help: "Chunks returned by read statements.",
		}),
		ReadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "reader", Name: "query_seconds",
			Help:    "Duration of read statements.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
		}),
		ReadsSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "reader", Name: "reads_skipped_total",
			Help: "Reads answered without a query because nothing can have changed since the last one.",
		}),
		ReadsLocal: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "reader", Name: "reads_local_total",
			Help: "Reads answered from what this process's writer just committed, without a query.",
		}),
		LongPoll: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "reader", Name: "wait_seconds",
			Help:    "Duration of waiting reads (long-poll requests and SSE waits), by outcome.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		ProviderFailures,
		m.ChunksWritten, m.Finishes, m.Commits, m.BatchRows, m.BatchJobs, m.CommitSeconds,
		m.Notifies, m.LeasesLostRows, m.AppendWaits,
		m.Notifications, m.Wakeups, m.ReadQueries, m.ReadPairs, m.ReadRows, m.ReadSeconds,
		m.ReadsSkipped, m.ReadsLocal, m.LongPoll,
	)
	// Create the labelled series up front so they are visible at zero.
	m.AppendWaits.WithLabelValues("room")
	m.AppendWaits.WithLabelValues("gave_up")
	m.Commits.WithLabelValues("ok")
	m.Commits.WithLabelValues("error")
	m.ReadQueries.WithLabelValues("single")
	m.ReadQueries.WithLabelValues("many")
	return m
}

// Registry is where the series are registered (to add more).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// WatchPool exports the statistics of a pool named name (connections
// total, idle, in use, waits for a connection), with the label pool=name.
// pg_notification_queue_usage() is exported too, read from the database at
// scrape time: a long-open transaction blocks the notification queue's
// cleanup, and a full queue fails every NOTIFY; alert before it fills.
func (m *Metrics) WatchPool(name string, pool *pgxpool.Pool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pools == nil {
		m.pools = &poolCollector{}
		m.reg.MustRegister(m.pools)
	}
	m.pools.add(name, pool)
}

// WatchFunc exports a gauge whose value is read from f at scrape time
// (waiters, running jobs, ...).
func (m *Metrics) WatchFunc(subsystem, name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: subsystem, Name: name, Help: help,
	}, f))
}

var (
	poolDescs = struct {
		total, idle, acquired, max, acquires, emptyWaits, waitSeconds, queueUsage *prometheus.Desc
	}{
		total:       prometheus.NewDesc(Namespace+"_pool_conns", "Open database connections in the pool.", []string{"pool"}, nil),
		idle:        prometheus.NewDesc(Namespace+"_pool_idle_conns", "Idle database connections in the pool.", []string{"pool"}, nil),
		acquired:    prometheus.NewDesc(Namespace+"_pool_acquired_conns", "Database connections in use.", []string{"pool"}, nil),
		max:         prometheus.NewDesc(Namespace+"_pool_max_conns", "Maximum size of the pool.", []string{"pool"}, nil),
		acquires:    prometheus.NewDesc(Namespace+"_pool_acquires_total", "Connections acquired from the pool.", []string{"pool"}, nil),
		emptyWaits:  prometheus.NewDesc(Namespace+"_pool_empty_acquires_total", "Acquires that had to wait for a connection.", []string{"pool"}, nil),
		waitSeconds: prometheus.NewDesc(Namespace+"_pool_acquire_wait_seconds_total", "Time spent waiting for a connection.", []string{"pool"}, nil),
		queueUsage:  prometheus.NewDesc(Namespace+"_pg_notification_queue_usage", "pg_notification_queue_usage(): fraction of the NOTIFY queue in use (0..1).", nil, nil),
	}
)

// poolCollector exports the statistics of the watched pools, and
// pg_notification_queue_usage().
type poolCollector struct {
	mu    sync.Mutex
	names []string
	pools []*pgxpool.Pool
	// The queue usage is cached briefly so that frequent scrapes do not
	// each take a pool connection.
	usage   float64
	usageAt time.Time
	usageOK bool
}

func (c *poolCollector) add(name string, pool *pgxpool.Pool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names = append(c.names, name)
	c.pools = append(c.pools, pool)
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolDescs.total
	ch <- poolDescs.idle
	ch <- poolDescs.acquired
	ch <- poolDescs.max
	ch <- poolDescs.acquires
	ch <- poolDescs.emptyWaits
	ch <- poolDescs.waitSeconds
	ch <- poolDescs.queueUsage
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	names, pools := c.names, c.pools
	c.mu.Unlock()
	for i, pool := range pools {
		s, name := pool.Stat(), names[i]
		ch <- prometheus.MustNewConstMetric(poolDescs.total, prometheus.GaugeValue, float64(s.TotalConns()), name)
		ch <- prometheus.MustNewConstMetric(poolDescs.idle, prometheus.GaugeValue, float64(s.IdleConns()), name)
		ch <- prometheus.MustNewConstMetric(poolDescs.acquired, prometheus.GaugeValue, float64(s.AcquiredConns()), name)
		ch <- prometheus.MustNewConstMetric(poolDescs.max, prometheus.GaugeValue, float64(s.MaxConns()), name)
		ch <- prometheus.MustNewConstMetric(poolDescs.acquires, prometheus.CounterValue, float64(s.AcquireCount()), name)
		ch <- prometheus.MustNewConstMetric(poolDescs.emptyWaits, prometheus.CounterValue, float64(s.EmptyAcquireCount()), name)
		ch <- prometheus.MustNewConstMetric(poolDescs.waitSeconds, prometheus.CounterValue, s.AcquireDuration().Seconds(), name)
	}
	if len(pools) == 0 {
		return
	}
	// Through the pool watched last (the workers', when there is one):
	// the API's may be saturated by requests.
	if usage, ok := c.queueUsage(pools[len(pools)-1]); ok {
		ch <- prometheus.MustNewConstMetric(poolDescs.queueUsage, prometheus.GaugeValue, usage)
	}
}

func (c *poolCollector) queueUsage(pool *pgxpool.Pool) (float64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.usageAt.IsZero() && time.Since(c.usageAt) < time.Second {
		return c.usage, c.usageOK
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var usage float64
	err := pool.QueryRow(ctx, "SELECT pg_notification_queue_usage()").Scan(&usage)
	c.usage, c.usageOK, c.usageAt = usage, err == nil, time.Now()
	return c.usage, c.usageOK
}

// ObserveFlush records one chunk writer transaction.
func (m *Metrics) ObserveFlush(rows, finishes, fencedJobs, jobs, notifies int, d time.Duration, err error) {
	if err != nil {
		m.Commits.WithLabelValues("error").Inc()
		return
	}
	m.Commits.WithLabelValues("ok").Inc()
	m.ChunksWritten.Add(float64(rows))
	m.Finishes.Add(float64(finishes))
	m.BatchRows.Observe(float64(rows))
	m.BatchJobs.Observe(float64(jobs))
	m.CommitSeconds.Observe(d.Seconds())
	m.Notifies.Add(float64(notifies))
	m.LeasesLostRows.Add(float64(fencedJobs))
}

// ObserveAppendWait records an Append that waited d for room in the chunk
// writer's buffer; ok is false when it gave up.
func (m *Metrics) ObserveAppendWait(d time.Duration, ok bool) {
	outcome := "room"
	if !ok {
		outcome = "gave_up"
	}
	m.AppendWaits.WithLabelValues(outcome).Observe(d.Seconds())
}

// ObserveRead records one read statement covering pairs (job, offset)
// pairs and returning rows chunks.
func (m *Metrics) ObserveRead(pairs, rows int, d time.Duration) {
	kind := "single"
	if pairs > 1 {
		kind = "many"
	}
	m.ReadQueries.WithLabelValues(kind).Inc()
	m.ReadPairs.Observe(float64(pairs))
	m.ReadRows.Add(float64(rows))
	m.ReadSeconds.Observe(d.Seconds())
}
