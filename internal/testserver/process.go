package testserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MainPackage is the import path of the jobstream command.
const MainPackage = "github.com/jobstream/jobstream/cmd/jobstream"

// Build compiles the jobstream command into dir and returns the binary's
// path. The binary gets the race detector when the tests have it. Call it
// once per test package, from TestMain.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "jobstream")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, MainPackage)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", MainPackage, err, out)
	}
	return bin, nil
}

// StartTimeout bounds how long Start waits for a server to report its
// address. It is a safety net for a server that hangs, not a
// synchronisation: Start returns as soon as the server is ready.
var StartTimeout = 60 * time.Second

// Options configure a server process.
type Options struct {
	// DatabaseURL is the server's DATABASE_URL. Required: use Database(t)
	// for a database of the test's own.
	DatabaseURL string
	// Args are extra `serve` flags, after the defaults --dev --addr
	// 127.0.0.1:0 --max-conns 4 (a later flag wins).
	Args []string
	// Env holds extra KEY=value environment variables.
	Env []string
}

// Process is a running `jobstream serve`.
type Process struct {
	// Addr is the bound host:port and URL is http://Addr.
	Addr string
	URL  string

	cmd    *exec.Cmd
	log    *LogWatcher
	done   chan struct{} // closed when the process has exited
	err    error         // the exit status, set before done is closed
	stopMu sync.Mutex
}

// Start runs `bin serve` with o and returns once the server logged the
// address it serves on: it accepts requests, though its LISTEN connection
// may still be connecting (/readyz says when it is; notifications sent
// meanwhile are covered by the wake-up of every waiter on connect). A
// process still running when the test ends is stopped (SIGTERM, then
// SIGKILL) and must exit cleanly; its log is printed if the test failed.
func Start(t testing.TB, bin string, o Options) *Process {
	t.Helper()
	if o.DatabaseURL == "" {
		t.Fatal("testserver: Options.DatabaseURL is required")
	}
	args := append([]string{"serve", "--dev", "--addr", "127.0.0.1:0", "--max-conns", "4"}, o.Args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(serverEnv(), "DATABASE_URL="+o.DatabaseURL)
	cmd.Env = append(cmd.Env, o.Env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	cmd.Stdout = io.Discard
	dieWithParent(cmd)
	p := &Process{cmd: cmd, log: NewLogWatcher(), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testserver: start %s: %v", bin, err)
	}
	go func() {
		// Copy the log until the pipe closes (the process exited), then
		// reap the process.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.log.Write(append(sc.Bytes(), '\n'))
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			// Stopped, killed or exited under the test's eyes: its
			// exit status was the test's to check.
		default:
			if err := p.Stop(); err != nil {
				t.Errorf("testserver: stop server: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("server %s log:\n%s", p.Addr, p.Logs())
		}
	})

	timeout := time.NewTimer(StartTimeout)
	defer timeout.Stop()
	select {
	case p.Addr = <-p.log.Addr():
		p.URL = "http://" + p.Addr
		return p
	case <-p.done:
		t.Fatalf("testserver: server exited before serving (%v); log:\n%s", p.err, p.Logs())
	case <-timeout.C:
		t.Fatalf("testserver: server did not report its address within %s; log:\n%s", StartTimeout, p.Logs())
	}
	return nil
}

// serverEnv is this process's environment without the variables that would
// configure the server behind the test's back.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "DATABASE_URL" || k == "TEST_DATABASE_URL" || strings.HasPrefix(k, "JOBSTREAM_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// Pid is the server's process id (fault-injection tests read
// /proc/<pid>/status, or signal it themselves).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Logs returns the server's log so far.
func (p *Process) Logs() string { return p.log.String() }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop asks the server to shut down (SIGTERM) and waits for it to exit; a
// server that has not exited after StopTimeout is killed. It returns the
// exit status (nil for a clean shutdown). Safe to call more than once.
func (p *Process) Stop() error {
	return p.signalAndWait(syscall.SIGTERM)
}

// Kill kills the server at once (SIGKILL), as a crash would, and waits for
// it to exit. It returns nil once the process is gone.
func (p *Process) Kill() error {
	err := p.signalAndWait(syscall.SIGKILL)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil
	}
	return err
}

// StopTimeout bounds a graceful Stop before the process is killed.
var StopTimeout = 30 * time.Second

func (p *Process) signalAndWait(sig syscall.Signal) error {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	select {
	case <-p.done:
		return p.err
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	t := time.NewTimer(StopTimeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("server did not stop within %s after %s; killed", StopTimeout, sig)
	}
}
