package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// Errors that mean the database is unreachable answer 503 with Retry-After
// on every route, not 500; other unexpected errors stay 500 without detail.
func TestWriteErrorUnavailable(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, tc := range map[string]struct {
		err    error
		status int
	}{
		"AdminShutdown":  {fmt.Errorf("submit job: %w", &pgconn.PgError{Code: "57P01"}), http.StatusServiceUnavailable},
		"ConnectionLost": {fmt.Errorf("list jobs: %w", io.ErrUnexpectedEOF), http.StatusServiceUnavailable},
		"QueryBug":       {fmt.Errorf("list jobs: %w", &pgconn.PgError{Code: "42703"}), http.StatusInternalServerError},
		"Other":          {errors.New("boom"), http.StatusInternalServerError},
	} {
		w := httptest.NewRecorder()
		WriteError(log, w, httptest.NewRequest(http.MethodGet, "/v1/jobs", nil), tc.err)
		if w.Code != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", name, w.Code, tc.status, w.Body)
		}
		if tc.status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", name)
		}
	}
}

// records is a slog handler that keeps every record, at every level.
type records struct {
	mu   sync.Mutex
	list []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.list = append(h.list, r)
	return nil
}
func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *records) WithGroup(string) slog.Handler      { return h }

func (h *records) levels() []slog.Level {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ls []slog.Level
	for _, r := range h.list {
		ls = append(ls, r.Level)
	}
	return ls
}

// TestWriteErrorClientGone: a request whose client went away (its context
// ended: a browser tab closed mid-request) failed for that, not for a
// fault of the server's: its error is logged at Debug, never at ERROR,
// and nothing is written (nobody reads it, and a revoked key's request is
// answered 401 by Authenticate). The same error while the client is still
// there stays a logged 500.
func TestWriteErrorClientGone(t *testing.T) {
	t.Parallel()
	for name, err := range map[string]error{
		"Canceled":      fmt.Errorf("get job: %w", context.Canceled),
		"ConnectionCut": fmt.Errorf("list jobs: %w", io.ErrUnexpectedEOF),
		"Other":         errors.New("boom"),
	} {
		h := &records{}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		w := httptest.NewRecorder()
		WriteError(slog.New(h), w, httptest.NewRequest(http.MethodGet, "/v1/jobs", nil).WithContext(ctx), err)
		if w.Body.Len() != 0 || w.Code != http.StatusOK {
			t.Errorf("%s, client gone: wrote %d %s, want nothing", name, w.Code, w.Body)
		}
		if ls := h.levels(); len(ls) != 1 || ls[0] != slog.LevelDebug {
			t.Errorf("%s, client gone: logged at %v, want once at DEBUG", name, ls)
		}
	}
	// A client still there: the error is the server's.
	h := &records{}
	w := httptest.NewRecorder()
	WriteError(slog.New(h), w, httptest.NewRequest(http.MethodGet, "/v1/jobs", nil), fmt.Errorf("get job: %w", context.Canceled))
	if w.Code != http.StatusInternalServerError {
		t.Errorf("client there: status %d, want 500", w.Code)
	}
	if ls := h.levels(); len(ls) != 1 || ls[0] != slog.LevelError {
		t.Errorf("client there: logged at %v, want once at ERROR", ls)
	}
	// An API error is still written to a client gone: it costs nothing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w = httptest.NewRecorder()
	WriteError(slog.New(&records{}), w, httptest.NewRequest(http.MethodGet, "/v1/jobs", nil).WithContext(ctx), Errorf(http.StatusNotFound, "job_not_found", "job x not found"))
	if w.Code != http.StatusNotFound {
		t.Errorf("API error, client gone: status %d, want 404", w.Code)
	}
}
