//go:build !unix

package pgsetup

import (
	"io/fs"
	"os/exec"
)

// serverAccount: only Unix has root to step down from.
func serverAccount(string) (*account, error) { return nil, nil }

func (a *account) apply(*exec.Cmd) {}

func (c *cluster) handOver(fs.FileInfo, *account) error { return nil }

// lockFile does not lock: concurrent first starts are not serialised here.
func lockFile(string) (func(), error) { return func() {}, nil }
