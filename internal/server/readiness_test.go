package server

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// TestReadinessHidesDetails: /readyz needs no credentials, so when the
// database is unreachable it says only that; the host, port, user and
// database go to the log.
func TestReadinessHidesDetails(t *testing.T) {
	t.Parallel()
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	pool, err := pgxpool.New(context.Background(), "postgres://secretuser@"+addr+"/secretdb?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var logs bytes.Buffer
	ready := readiness(pool, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = ready(ctx)
	if err == nil || err.Error() != "database unreachable" {
		t.Fatalf("readiness = %v, want exactly \"database unreachable\"", err)
	}
	_, port, _ := net.SplitHostPort(addr)
	if !strings.Contains(logs.String(), port) {
		t.Errorf("the log lacks the details: %s", logs.String())
	}
}
