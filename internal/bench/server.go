package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jobstream/jobstream/internal/config"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/engine/sim"
	"github.com/jobstream/jobstream/internal/server"
)

// target is the server under test.
type target struct {
	url string
	// pid is the server's process (for its CPU time); 0 when unknown, and
	// os.Getpid() when the server runs in the bench's own process.
	pid  int
	stop func() error
	log  *logTail
	// pprofURL serves the server's /debug/pprof/ (a started child run
	// for --profile); empty otherwise.
	pprofURL string
}

// freeLoopbackAddr returns a loopback address with a port free right now.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startChild runs `exe serve --dev --addr 127.0.0.1:0 ...` and waits for its
// "msg=serving addr=..." log line.
func startChild(ctx context.Context, exe, dbURL string, args []string) (*target, error) {
	full := append([]string{"serve", "--dev", "--addr", "127.0.0.1:0"}, args...)
	cmd := exec.Command(exe, full...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL)
	tail := newLogTail()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server %s: %w", exe, err)
	}
	addr := make(chan string, 1)
	go tail.copy(stderr, addr)
	t := &target{pid: cmd.Process.Pid, log: tail}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.stop = func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			return <-exited
		}
	}
	timer := time.NewTimer(60 * time.Second)
	defer timer.Stop()
	select {
	case a := <-addr:
		t.url = "http://" + a
		return t, nil
	case err := <-exited:
		return nil, fmt.Errorf("server exited before serving: %v\n%s", err, tail.String())
	case <-timer.C:
		_ = t.stop()
		return nil, fmt.Errorf("server did not start within 60s:\n%s", tail.String())
	case <-ctx.Done():
		_ = t.stop()
		return nil, ctx.Err()
	}
}

// startInProcess runs internal/server.Run in this process. The server's CPU
// time cannot be told apart from the load generator's then.
func startInProcess(ctx context.Context, dbURL string, cfg config.Serve) (*target, error) {
	engines := engine.NewRegistry()
	engines.Register(sim.Info(), sim.New())
	cfg.Addr = "127.0.0.1:0"
	cfg.Dev = true
	cfg.DatabaseURL = dbURL
	runCtx, cancel := context.WithCancel(ctx)
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(runCtx, cfg, server.Deps{
			Engines:   engines,
			Getenv:    func(string) string { return "" },
			Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
			Listening: func(a net.Addr) { addr <- a },
		})
	}()
	select {
	case a := <-addr:
		return &target{url: "http://" + a.String(), pid: os.Getpid(), stop: func() error { cancel(); return <-done }}, nil
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("server: %w", err)
	}
}

var servingLine = regexp.MustCompile(`\bmsg=serving addr=(\S+)`)

// logTail keeps the last lines of a server's log and finds its address.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

func newLogTail() *logTail { return &logTail{} }

func (l *logTail) copy(r io.Reader, addr chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := false
	for sc.Scan() {
		line := sc.Text()
		if !found {
			if m := servingLine.FindStringSubmatch(line); m != nil {
				found = true
				addr <- strings.Trim(m[1], `"`)
				continue
			}
		}
		l.mu.Lock()
		l.lines = append(l.lines, line)
		if len(l.lines) > 200 {
			l.lines = l.lines[len(l.lines)-100:]
		}
		l.mu.Unlock()
	}
}

func (l *logTail) String() string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// scrape reads a Prometheus text exposition into name{labels} -> value.
func scrape(ctx context.Context, hc *http.Client, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

// procCPU returns the user+system CPU seconds used by process pid.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

func parseStatCPU(b []byte) (float64, error) {
	// The command name (field 2) may contain spaces: fields are counted
	// from the closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// After ")": state(3) ppid(4) ... utime(14) stime(15): indexes 11, 12.
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	s, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return (u + s) / clockTicks, nil
}

// postgresCPU returns the CPU seconds of every process named postgres on
// this machine (server, backends, WAL writer, ...), by pid.
func postgresCPU() map[int]float64 {
	out := map[int]float64{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		if cpu, err := procCPU(pid); err == nil {
			out[pid] = cpu
		}
	}
	return out
}

// cpuDelta sums per-process CPU growth between two postgresCPU readings;
// processes that started in between count from zero.
func cpuDelta(before, after map[int]float64) float64 {
	total := 0.0
	for pid, a := range after {
		total += a - before[pid]
	}
	return total
}
