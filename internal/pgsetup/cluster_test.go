package pgsetup

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// TestEmbeddedCluster runs a real private cluster: initdb, start, reuse,
// stop, restart. As root it also exercises running the server as postgres,
// including making t.TempDir's 0700 parent traversable.
func TestEmbeddedCluster(t *testing.T) {
	t.Parallel()

	bin := (Config{Getenv: func(string) string { return "" }}).findBinaries()
	if bin == "" {
		t.Skip("no PostgreSQL server binaries (initdb, pg_ctl, postgres) installed")
	}
	// Spaces and a quote check the quoting through pg_ctl's shell and
	// postgres's directory list.
	dataDir := filepath.Join(t.TempDir(), "data 'dir'")
	cfg := Config{DataDir: dataDir, Logf: t.Logf, noLocal: true}

	// Stop whatever is left running, even if the test fails half-way.
	cl := &cluster{dataDir: dataDir, bin: bin, logf: t.Logf}
	t.Cleanup(func() {
		if err := cl.stop(context.Background()); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})

	// Two processes starting the same new cluster at once: exactly one
	// initialises and starts it, and both get it.
	var (
		results [2]Result
		errs    [2]error
		wg      sync.WaitGroup
	)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = Resolve(t.Context(), cfg) })
	}
	wg.Wait()
	starters := 0
	for i, res := range results {
		if errs[i] != nil {
			t.Fatalf("Resolve %d: %v", i, errs[i])
		}
		if res.Source != SourceEmbedded {
			t.Errorf("Resolve %d: Source = %q, want %q", i, res.Source, SourceEmbedded)
		}
		if res.Stop != nil {
			starters++
		}
	}
	if starters != 1 {
		t.Fatalf("%d of 2 concurrent Resolve calls started the cluster, want 1", starters)
	}
	if want := connURL(dataDir, 5432, "jobstream", "jobstream"); results[0].URL != want {
		t.Errorf("URL = %q, want %q", results[0].URL, want)
	}
	if got := queryString(t, results[0].URL, "SELECT 1::text"); got != "1" {
		t.Errorf("SELECT 1 = %q", got)
	}
	if got := queryString(t, results[0].URL, "SHOW listen_addresses"); got != "" {
		t.Errorf("listen_addresses = %q, want '' (socket only)", got)
	}

	// Running: reused, even with local probing on, since an initialised
	// private cluster wins over a local server.
	reuse := cfg
	reuse.noLocal = false
	res, err := Resolve(t.Context(), reuse)
	if err != nil {
		t.Fatalf("Resolve running cluster: %v", err)
	}
	if res.Source != SourceEmbedded || res.Stop != nil || res.URL != results[0].URL {
		t.Errorf("Resolve running cluster = {URL: %q, Source: %q, Stop set: %t}, want the same cluster, not restarted",
			res.URL, res.Source, res.Stop != nil)
	}

	// PGHOST still beats the private cluster: the user asked for that server.
	explicit := cfg
	explicit.noLocal = false
	explicit.Database = uniqueName()
	explicit.Getenv = func(k string) string { return map[string]string{"PGHOST": "127.0.0.1", "PGUSER": "postgres"}[k] }
	dropDatabase(t, testServerURL(t), explicit.Database)
	if res, err := Resolve(t.Context(), explicit); err != nil || res.Source != SourceLocal {
		t.Errorf("Resolve with PGHOST = {Source: %q}, %v; want %q", res.Source, err, SourceLocal)
	}

	// Stopped: started again, without a new initdb.
	stop := results[slices.IndexFunc(results[:], func(r Result) bool { return r.Stop != nil })].Stop
	if err := stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := stop(t.Context()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	res, err = Resolve(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Resolve stopped cluster: %v", err)
	}
	if res.Source != SourceEmbedded || res.Stop == nil {
		t.Errorf("Resolve stopped cluster = {Source: %q, Stop set: %t}, want %q, started", res.Source, res.Stop != nil, SourceEmbedded)
	}
	if got := queryString(t, res.URL, "SELECT current_user"); got != "jobstream" {
		t.Errorf("current_user = %q, want jobstream", got)
	}
}

func TestByVersionDesc(t *testing.T) {
	t.Parallel()

	got := byVersionDesc([]string{
		"/usr/lib/postgresql/9.6/bin",
		"/opt/homebrew/opt/postgresql/bin",
		"/usr/lib/postgresql/15/bin",
		"/opt/homebrew/opt/postgresql@16/bin",
		"/usr/lib/postgresql/10/bin",
	})
	want := []string{
		"/opt/homebrew/opt/postgresql@16/bin",
		"/usr/lib/postgresql/15/bin",
		"/usr/lib/postgresql/10/bin",
		"/usr/lib/postgresql/9.6/bin",
		"/opt/homebrew/opt/postgresql/bin",
	}
	if !slices.Equal(got, want) {
		t.Errorf("byVersionDesc = %q, want %q", got, want)
	}
}

func TestShellQuote(t *testing.T) {
	t.Parallel()

	if got, want := shellQuote(`a 'b'`), `'a '\''b'\'''`; got != want {
		t.Errorf("shellQuote = %s, want %s", got, want)
	}
}
