//go:build unix

package pgsetup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

func isRoot() bool { return os.Geteuid() == 0 }

// processAlive reports whether a process with this pid exists (signal 0
// checks without sending anything; EPERM means it exists but is not ours).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// serverAccount returns who runs initdb and pg_ctl: nil (ourselves) unless
// we are root, which PostgreSQL refuses. Then it is the owner of the
// existing cluster in pgdata, else "postgres", else "nobody".
func serverAccount(pgdata string) (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if fi, err := os.Stat(pgdata); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
			name := strconv.FormatUint(uint64(st.Uid), 10)
			if u, err := user.LookupId(name); err == nil {
				name = u.Username
			}
			return &account{name: name, uid: st.Uid, gid: st.Gid}, nil
		}
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &account{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
	}
	return nil, errors.New("PostgreSQL refuses to run as root and there is no user postgres or nobody to run it as; " +
		"create a postgres user or run jobstream as an ordinary user")
}

// apply makes cmd run as a, with no supplementary groups (root's must not
// leak to the server).
func (a *account) apply(cmd *exec.Cmd) {
	if a == nil {
		return
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: []uint32{}},
	}
}

// handOver gives DataDir (described by fi) to acct, and lets acct traverse
// every directory above it.
func (c *cluster) handOver(fi fs.FileInfo, acct *account) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("data directory %s: no owner information", c.dataDir)
	}
	if st.Uid != acct.uid || st.Gid != acct.gid {
		if err := c.onlyOurFiles(acct); err != nil {
			return err
		}
		if err := os.Chown(c.dataDir, int(acct.uid), int(acct.gid)); err != nil {
			return fmt.Errorf("give data directory to user %s: %w", acct.name, err)
		}
	}

	for dir := filepath.Dir(c.dataDir); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no owner information", dir)
		}
		// The kernel checks the owner bits, else the group bits, else the
		// others bits; acct has no supplementary groups (see apply).
		var bit fs.FileMode = 0o001
		switch {
		case st.Uid == acct.uid:
			bit = 0o100
		case st.Gid == acct.gid:
			bit = 0o010
		}
		if fi.Mode()&bit == 0 {
			mode := fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) | bit
			c.warn("WARNING: changing the mode of %s from %04o to %04o so that user %s, who runs PostgreSQL "+
				"(it refuses to run as root), can reach the data directory %s; to leave %s alone, "+
				"choose a --data-dir that user can reach, such as the default for root, %s",
				dir, fi.Mode().Perm(), mode.Perm(), acct.name, c.dataDir, dir, rootDataDir)
			if err := os.Chmod(dir, mode); err != nil {
				return fmt.Errorf("let user %s traverse %s: %w", acct.name, dir, err)
			}
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}

// lockFile takes an exclusive lock on path, creating it, and returns the
// function that releases it.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("flock %s: %w", path, err)
	}
	return func() { _ = f.Close() }, nil // closing releases the lock
}
