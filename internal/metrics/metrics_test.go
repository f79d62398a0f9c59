package metrics_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/metrics"
	"github.com/jobstream/jobstream/internal/server"
)

func scrape(t *testing.T, h http.Handler, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.WatchPool("api", dbtest.Pool(t))
	m.WatchPool("worker", dbtest.PoolSize(t, 2))
	m.WatchFunc("reader", "waiters", "Waiting reads.", func() float64 { return 7 })
	m.ObserveFlush(250, 2, 1, 120, 1, 3*time.Millisecond, nil)
	m.ObserveFlush(10, 0, 0, 5, 1, time.Millisecond, errors.New("db down"))
	m.ObserveRead(40, 55, 2*time.Millisecond)
	m.ObserveRead(1, 1, time.Millisecond)
	m.Wakeups.Add(40)
	m.Notifications.Inc()
	m.ReadsSkipped.Inc()
	m.LongPoll.WithLabelValues("data").Observe(0.02)
	metrics.ProviderFailures.WithLabelValues("openai-test", "rate_limited").Inc()

	body := scrape(t, m.Handler(), "/metrics")
	for _, want := range []string{
		"jobstream_writer_chunks_total 250",
		"jobstream_writer_finishes_total 2",
		`jobstream_writer_commits_total{result="ok"} 1`,
		`jobstream_writer_commits_total{result="error"} 1`,
		"jobstream_writer_batch_rows_count 1",
		"jobstream_writer_batch_jobs_sum 120",
		"jobstream_writer_commit_seconds_count 1",
		"jobstream_writer_notifies_total 1",
		"jobstream_writer_fenced_jobs_total 1",
		"jobstream_listener_notifications_total 1",
		"jobstream_listener_wakeups_total 40",
		`jobstream_reader_queries_total{kind="many"} 1`,
		`jobstream_reader_queries_total{kind="single"} 1`,
		"jobstream_reader_query_pairs_sum 41",
		"jobstream_reader_rows_total 56",
		"jobstream_reader_reads_skipped_total 1",
		`jobstream_reader_wait_seconds_count{outcome="data"} 1`,
		"jobstream_reader_waiters 7",
		`jobstream_provider_failures_total{engine="openai-test",type="rate_limited"} 1`,
		`jobstream_pool_max_conns{pool="api"} 4`,
		`jobstream_pool_max_conns{pool="worker"} 2`,
		`jobstream_pool_conns{pool="api"} `,
		`jobstream_pool_acquired_conns{pool="worker"} `,
		`jobstream_pool_acquire_wait_seconds_total{pool="api"} `,
		"jobstream_pg_notification_queue_usage ",
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// TestMetricsRoute: the API serves /metrics without authentication.
func TestMetricsRoute(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.Notifications.Inc()
	api := server.NewAPI(server.APIDeps{Metrics: m.Handler()})
	if body := scrape(t, api, "/metrics"); !strings.Contains(body, "jobstream_listener_notifications_total 1") {
		t.Fatalf("/metrics:\n%s", body)
	}
}
