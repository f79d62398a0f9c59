package pgsetup

import (
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Parallel()

	// env returns a Getenv reading only vars.
	env := func(vars map[string]string) func(string) string {
		return func(key string) string { return vars[key] }
	}

	t.Run("EnvURL", func(t *testing.T) {
		t.Parallel()
		name := uniqueName()
		dbURL := testDatabaseURL(t, name)

		res, err := Resolve(t.Context(), Config{DatabaseURL: dbURL, DataDir: t.TempDir(), Logf: t.Logf})
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		if res.URL != dbURL || res.Source != SourceEnv || res.Stop != nil {
			t.Errorf("Resolve = {URL: %q, Source: %q, Stop set: %t}, want {%q, %q, false}",
				res.URL, res.Source, res.Stop != nil, dbURL, SourceEnv)
		}
		if got := queryString(t, res.URL, "SELECT current_database()"); got != name {
			t.Errorf("current_database() = %q, want %q (created by Resolve)", got, name)
		}
	})

	t.Run("LocalServer", func(t *testing.T) {
		t.Parallel()
		// An awkward name checks the URL's escaping.
		name := `pgsetup "Local" ` + uniqueName()
		dropDatabase(t, testServerURL(t), name)
		dataDir := t.TempDir()

		res, err := Resolve(t.Context(), Config{Database: name, DataDir: dataDir, Logf: t.Logf, binDirs: []string{}})
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		if res.Source != SourceLocal || res.Stop != nil {
			t.Errorf("Resolve = {Source: %q, Stop set: %t}, want {%q, false}", res.Source, res.Stop != nil, SourceLocal)
		}
		if got := queryString(t, res.URL, "SELECT current_database()"); got != name {
			t.Errorf("current_database() = %q, want %q", got, name)
		}
		if _, err := os.Stat(filepath.Join(dataDir, "pg")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("private cluster directory exists (stat: %v) although a local server answered", err)
		}
	})

	t.Run("HonoursPGEnv", func(t *testing.T) {
		t.Parallel()
		name := uniqueName()
		dropDatabase(t, testServerURL(t), name)

		res, err := Resolve(t.Context(), Config{
			Database: name,
			DataDir:  t.TempDir(),
			Getenv:   env(map[string]string{"PGHOST": "127.0.0.1", "PGUSER": "postgres"}),
			Logf:     t.Logf,
		})
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		u, err := url.Parse(res.URL)
		if err != nil {
			t.Fatal(err)
		}
		if res.Source != SourceLocal || u.Host != "127.0.0.1:5432" || u.User.Username() != "postgres" {
			t.Errorf("Resolve = {URL: %q, Source: %q}, want postgres@127.0.0.1:5432, %q", res.URL, res.Source, SourceLocal)
		}
		if got := queryString(t, res.URL, "SELECT current_user"); got != "postgres" {
			t.Errorf("current_user = %q, want postgres", got)
		}
	})

	t.Run("ExplicitHostDown", func(t *testing.T) {
		t.Parallel()
		dataDir := t.TempDir()

		// PGHOST names a socket directory with no server in it: Resolve must
		// report it rather than start a private cluster behind the user's back.
		_, err := Resolve(t.Context(), Config{
			DataDir: dataDir,
			Getenv:  env(map[string]string{"PGHOST": t.TempDir()}),
			Logf:    t.Logf,
		})
		if err == nil || !strings.Contains(err.Error(), "PGHOST") {
			t.Fatalf("Resolve error = %v, want one naming PGHOST", err)
		}
		if _, err := os.Stat(filepath.Join(dataDir, "pg")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("private cluster directory exists (stat: %v)", err)
		}
	})

	t.Run("NoServerNoBinaries", func(t *testing.T) {
		t.Parallel()

		_, err := Resolve(t.Context(), Config{DataDir: t.TempDir(), Logf: t.Logf, noLocal: true, binDirs: []string{t.TempDir()}})
		if err == nil {
			t.Fatal("Resolve succeeded with no server and no binaries")
		}
		for _, want := range []string{"DATABASE_URL", "start PostgreSQL", "server package", "docker compose"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Resolve error %q does not mention %q", err, want)
			}
		}
	})

	t.Run("RelativeDataDir", func(t *testing.T) {
		t.Parallel()

		if _, err := Resolve(t.Context(), Config{DataDir: "data", noLocal: true}); err == nil {
			t.Fatal("Resolve accepted a relative data directory")
		}
	})
}

func TestDefaultDataDir(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"XDGDataHome", map[string]string{"XDG_DATA_HOME": "/xdg", "HOME": "/home/u"}, "/xdg/jobstream"},
		{"RelativeXDGIgnored", map[string]string{"XDG_DATA_HOME": "xdg", "HOME": "/home/u"}, "/home/u/.local/share/jobstream"},
		{"Home", map[string]string{"HOME": "/home/u"}, "/home/u/.local/share/jobstream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := defaultDataDir(func(k string) string { return tt.env[k] }, false)
			if err != nil || got != tt.want {
				t.Errorf("defaultDataDir = %q, %v; want %q", got, err, tt.want)
			}
		})
	}

	// As root the server runs as another user, who cannot traverse a
	// home directory of mode 0700: the default is then one every user
	// can reach, unless a cluster already lives in the home directory.
	t.Run("RootNoCluster", func(t *testing.T) {
		t.Parallel()
		home := t.TempDir()
		got, err := defaultDataDir(func(k string) string { return map[string]string{"HOME": home}[k] }, true)
		if err != nil || got != rootDataDir {
			t.Errorf("defaultDataDir as root = %q, %v; want %q", got, err, rootDataDir)
		}
	})
	t.Run("RootExistingCluster", func(t *testing.T) {
		t.Parallel()
		home := t.TempDir()
		old := filepath.Join(home, ".local", "share", "jobstream")
		if err := os.MkdirAll(filepath.Join(old, "pg"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(old, "pg", "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := defaultDataDir(func(k string) string { return map[string]string{"HOME": home}[k] }, true)
		if err != nil || got != old {
			t.Errorf("defaultDataDir as root with a cluster in the home directory = %q, %v; want %q", got, err, old)
		}
	})
}

func TestLocalCandidates(t *testing.T) {
	t.Parallel()

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		s, err := localCandidates(func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.hosts, defaultHosts) || s.port != 5432 || s.explicit || s.users[len(s.users)-1] != "postgres" {
			t.Errorf("localCandidates = %+v", s)
		}
	})

	t.Run("Env", func(t *testing.T) {
		t.Parallel()
		vars := map[string]string{"PGHOST": "/run/pg, db.local", "PGPORT": "5433", "PGUSER": "alice"}
		s, err := localCandidates(func(k string) string { return vars[k] })
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.hosts, []string{"/run/pg", "db.local"}) || s.port != 5433 || !slices.Equal(s.users, []string{"alice"}) || !s.explicit {
			t.Errorf("localCandidates = %+v", s)
		}
	})

	t.Run("BadPort", func(t *testing.T) {
		t.Parallel()
		if _, err := localCandidates(func(k string) string { return map[string]string{"PGPORT": "x"}[k] }); err == nil {
			t.Error("localCandidates accepted PGPORT=x")
		}
	})
}

func TestConnURL(t *testing.T) {
	t.Parallel()

	tests := []struct {
		host, want string
	}{
		{"/var/run/postgresql", "postgres://jobstream@/jobstream?host=/var/run/postgresql&port=5432"},
		{"/tmp/a b&c+d", "postgres://jobstream@/jobstream?host=/tmp/a%20b%26c%2Bd&port=5432"},
		{"127.0.0.1", "postgres://jobstream@127.0.0.1:5432/jobstream"},
		{"::1", "postgres://jobstream@[::1]:5432/jobstream"},
	}
	for _, tt := range tests {
		if got := connURL(tt.host, 5432, "jobstream", "jobstream"); got != tt.want {
			t.Errorf("connURL(%q) = %q, want %q", tt.host, got, tt.want)
		}
	}
}

// TestRedact: the password is hidden wherever a connection string carries
// it: in a URL's userinfo, in its query (?password=, which pgx accepts as
// well, and the TLS key's sslpassword), in key=value pairs, and in a URL
// Go cannot parse.
func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"postgres://u:secret@db:5432/x?sslmode=disable":                     "postgres://u:xxxxx@db:5432/x?sslmode=disable",
		"postgres://u@/x?host=/tmp":                                         "postgres://u@/x?host=/tmp",
		"host=db user=u password=secret dbname=x":                           "host=db user=u password=xxxxx dbname=x",
		"host=db password='a b' dbname=x":                                   "host=db password=xxxxx dbname=x",
		"postgres://u@db/x?password=secret&sslmode=disable":                 "postgres://u@db/x?password=xxxxx&sslmode=disable",
		"postgres://u@/x?host=/var/run/postgresql&password=s%20ecret":       "postgres://u@/x?host=/var/run/postgresql&password=xxxxx",
		"postgresql://u:pw@db/x?PASSWORD=secret":                            "postgresql://u:xxxxx@db/x?PASSWORD=xxxxx",
		"postgres://u@db/x?sslmode=verify-full&sslpassword=secret&sslkey=k": "postgres://u@db/x?sslmode=verify-full&sslpassword=xxxxx&sslkey=k",
		"postgres://u:se%zzcret@db/x?password=secret&sslmode=disable":       "postgres://u:xxxxx@db/x?password=xxxxx&sslmode=disable",
		"host=db sslpassword=secret":                                        "host=db sslpassword=xxxxx",
	} {
		got := Redact(in)
		if got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, "secret") {
			t.Errorf("Redact(%q) = %q shows the password", in, got)
		}
	}
}
