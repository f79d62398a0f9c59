package pgsetup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// ClusterState is the state of the private cluster in a data directory.
type ClusterState struct {
	// DataDir is the data directory (Config.DataDir or its default).
	DataDir string
	// Initialised is true when DataDir/pg holds a cluster.
	Initialised bool
	// Running is true when the cluster answers on its socket.
	Running bool
	// PID is the postmaster's process id when Running, else 0.
	PID int
	// Log is the server's log file.
	Log string
}

// ClusterStatus reports the state of the private cluster in cfg.DataDir,
// whether or not jobstream would use it (Choose says that).
func ClusterStatus(ctx context.Context, cfg Config) (ClusterState, error) {
	cl, err := cfg.withDefaults().privateCluster()
	if err != nil {
		return ClusterState{}, err
	}
	return cl.state(ctx), nil
}

// StartCluster initialises the private cluster in cfg.DataDir if needed and
// starts it if it is not running, whatever DATABASE_URL or a local server
// say (ResolvePrivate). From then on Resolve prefers it to a local server.
func StartCluster(ctx context.Context, cfg Config) (Result, error) {
	return ResolvePrivate(ctx, cfg)
}

// StopCluster stops the private cluster in cfg.DataDir (fast shutdown: open
// sessions are rolled back) and returns once its postmaster process is
// gone, so that nothing is left running. It returns the state before the
// stop; stopping a cluster that is not running does nothing.
func StopCluster(ctx context.Context, cfg Config) (ClusterState, error) {
	cfg = cfg.withDefaults()
	cl, err := cfg.privateCluster()
	if err != nil {
		return ClusterState{}, err
	}
	before := cl.state(ctx)
	pid := before.PID
	if pid == 0 {
		pid = postmasterPID(cl.pgdata()) // not answering, but perhaps alive
	}
	if pid == 0 || !processAlive(pid) {
		return before, nil
	}
	if cl.bin = cfg.findBinaries(); cl.bin == "" {
		return before, fmt.Errorf("the private PostgreSQL cluster in %s runs as pid %d, but no pg_ctl was found to stop it", cl.pgdata(), pid)
	}
	if err := cl.stop(ctx); err != nil {
		return before, err
	}
	// pg_ctl -w returns once postmaster.pid is gone, which the postmaster
	// removes just before it exits: wait for the exit itself. The process
	// is not our child, so there is nothing to wait(2) on.
	deadline := time.Now().Add(30 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			return before, fmt.Errorf("the private PostgreSQL cluster's process %d is still running after pg_ctl stop", pid)
		}
		select {
		case <-ctx.Done():
			return before, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return before, nil
}

// privateCluster is the cluster in the configured data directory.
func (c Config) privateCluster() (*cluster, error) {
	dir, err := c.dataDir()
	if err != nil {
		return nil, err
	}
	return &cluster{dataDir: dir, logf: c.Logf, warnf: c.Warnf}, nil
}

func (c *cluster) state(ctx context.Context) ClusterState {
	s := ClusterState{DataDir: c.dataDir, Initialised: c.initialised(), Log: c.logFile()}
	if s.Initialised && probe(ctx, c.url("postgres")) == nil {
		s.Running = true
		s.PID = postmasterPID(c.pgdata())
	}
	return s
}

// postmasterPID reads the postmaster's pid from the first line of
// pgdata/postmaster.pid, or returns 0.
func postmasterPID(pgdata string) int {
	b, err := os.ReadFile(filepath.Join(pgdata, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	pid, err := strconv.Atoi(string(bytes.TrimSpace(line)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
