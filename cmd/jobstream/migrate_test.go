package main

import (
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/jobstream/jobstream/internal/testserver"
	"github.com/jobstream/jobstream/migrations"
)

func TestMigrate(t *testing.T) {
	t.Parallel()
	// A database of its own: rolling migrations back under other tests
	// would pull their schema away.
	env := map[string]string{"DATABASE_URL": testserver.EmptyDatabase(t)}
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("embedded migrations: %v, %v", files, err)
	}
	n := len(files)

	// states runs `migrate status` and returns the state of each migration.
	states := func(t *testing.T) []string {
		t.Helper()
		res := runCmd(t, env, "migrate", "status")
		if res.err != nil {
			t.Fatalf("migrate status: %v\n%s", res.err, res.stderr)
		}
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
			f := strings.Fields(line)
			if len(f) < 3 {
				t.Fatalf("status line %q", line)
			}
			out = append(out, f[0])
		}
		if len(out) != n {
			t.Fatalf("status lists %d migrations, want %d:\n%s", len(out), n, res.stdout)
		}
		return out
	}
	want := func(applied int) string {
		var s []string
		for i := range n {
			if i < applied {
				s = append(s, "applied")
			} else {
				s = append(s, "pending")
			}
		}
		return fmt.Sprint(s)
	}
	step := func(t *testing.T, action, wantOut string) {
		t.Helper()
		args := []string{"migrate"}
		if action != "" {
			args = append(args, action)
		}
		res := runCmd(t, env, args...)
		if res.err != nil || strings.TrimSpace(res.stdout) != wantOut {
			t.Fatalf("migrate %s = %q, %v; want %q\n%s", action, res.stdout, res.err, wantOut, res.stderr)
		}
	}

	if got := fmt.Sprint(states(t)); got != want(0) {
		t.Errorf("fresh database: %s, want %s", got, want(0))
	}
	step(t, "up", fmt.Sprintf("applied %d migration(s)", n))
	if got := fmt.Sprint(states(t)); got != want(n) {
		t.Errorf("after up: %s, want %s", got, want(n))
	}
	step(t, "up", "applied 0 migration(s)")
	step(t, "down", "rolled back one migration")
	if got := fmt.Sprint(states(t)); got != want(n-1) {
		t.Errorf("after down: %s, want %s", got, want(n-1))
	}
	step(t, "up", "applied 1 migration(s)")
	if got := fmt.Sprint(states(t)); got != want(n) {
		t.Errorf("after up again: %s, want %s", got, want(n))
	}
	// Every down migration works: all the way to an empty schema and back.
	for range n {
		step(t, "down", "rolled back one migration")
	}
	if got := fmt.Sprint(states(t)); got != want(0) {
		t.Errorf("after rolling everything back: %s, want %s", got, want(0))
	}
	// Without an argument, migrate applies what is pending.
	step(t, "", fmt.Sprintf("applied %d migration(s)", n))
}
