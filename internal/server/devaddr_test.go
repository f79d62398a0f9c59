package server_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestDevWarnsBeyondLoopback: a --dev server bound beyond loopback (every
// interface, as serve --dev was by default before issue 19) logs a warning
// that it serves anonymous requests to anyone who reaches it; one bound
// on loopback does not. Both log before they accept connections.
func TestDevWarnsBeyondLoopback(t *testing.T) {
	t.Parallel()
	db := testserver.Database(t)
	for _, tc := range []struct {
		addr string
		warn bool
	}{{"127.0.0.1:0", false}, {"0.0.0.0:0", true}, {":0", true}} {
		t.Run(tc.addr, func(t *testing.T) {
			cfg := testserver.ServeConfig(t, db, "--addr", tc.addr, "--retention-interval", "-1s")
			engines := engine.NewRegistry()
			engines.Register(sim.Info(), sim.New())
			logs := testserver.NewLogWatcher()
			addr := make(chan net.Addr, 1)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- server.Run(ctx, cfg, server.Deps{Engines: engines, Logger: slog.New(slog.NewTextHandler(logs, nil)),
					Listening: func(a net.Addr) { addr <- a }})
			}()
			testserver.Recv(t, addr, "the server to listen")
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			warned := strings.Contains(logs.String(), "level=WARN msg=\"--dev serves anonymous requests beyond this machine")
			if warned != tc.warn {
				t.Errorf("--dev --addr %s: warned %v, want %v; log:\n%s", tc.addr, warned, tc.warn, logs)
			}
		})
	}
}

// TestLoopback: what counts as loopback-only.
func TestLoopback(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.1.2.3:1": true, "[::1]:8080": true,
		"0.0.0.0:8080": false, "[::]:8080": false, "10.0.0.5:8080": false,
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := server.Loopback(a); got != want {
			t.Errorf("Loopback(%s) = %v, want %v", addr, got, want)
		}
	}
}
