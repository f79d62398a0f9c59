package server_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/server"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestRunAddrInUse: when the HTTP address cannot be bound, Run stops its
// workers and returns the error, rather than waiting on workers nobody
// told to stop.
func TestRunAddrInUse(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	cfg := testserver.ServeConfig(t, testserver.Database(t), "--addr", taken.Addr().String(), "--max-conns", "2")
	engines := engine.NewRegistry()
	engines.Register(sim.Info(), sim.New())

	// Run's context never ends by itself: only the failure may stop it.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg, server.Deps{Engines: engines}) }()
	timeout := time.NewTimer(testserver.Timeout)
	defer timeout.Stop()
	select {
	case err := <-done:
		cancel()
		if err == nil || !strings.Contains(err.Error(), "listen on") {
			t.Fatalf("Run = %v, want a listen error", err)
		}
	case <-timeout.C:
		cancel()
		<-done
		t.Fatalf("Run did not return within %s after failing to listen", testserver.Timeout)
	}
}
