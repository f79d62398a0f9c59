//go:build !unix

package pgsetup

import (
	"io/fs"
	"os/exec"
)

func isRoot() bool { return false }

// processAlive cannot tell here; the cluster is checked by its socket.
func processAlive(int) bool { return false }

// serverAccount: only Unix has root to step down from.
func serverAccount(string) (*account, error) { return nil, nil }

func (a *account) apply(*exec.Cmd) {}

func (c *cluster) handOver(fs.FileInfo, *account) error { return nil }

// lockFile does not lock: concurrent first starts are not serialised here.
func lockFile(string) (func(), error) { return func() {}, nil }
