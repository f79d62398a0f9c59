package config

import (
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, env map[string]string, args ...string) (*Serve, error) {
	t.Helper()
	var c Serve
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Flags(fs, func(k string) string { return env[k] })
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return &c, c.Validate()
}

func TestServe(t *testing.T) {
	t.Parallel()

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		c, err := parse(t, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.ListenAddr() != ":8080" || c.Role != RoleAll || c.LeaseTTL != 30*time.Second || c.Dev || c.PollOnly || c.CSRF || c.SessionTTL != 24*time.Hour {
			t.Fatalf("defaults = %+v", c)
		}
	})

	// --dev without an address listens on loopback only (issue 19: the
	// README's first command published an anonymous API on every
	// interface); an address given by flag or environment is kept, with
	// --dev too; without --dev the default stays every interface.
	t.Run("DevListensOnLoopback", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			env  map[string]string
			args []string
			want string
		}{
			{nil, nil, ":8080"},
			{nil, []string{"--dev"}, "127.0.0.1:8080"},
			{map[string]string{"JOBSTREAM_DEV": "true"}, nil, "127.0.0.1:8080"},
			{nil, []string{"--dev", "--addr", "0.0.0.0:8080"}, "0.0.0.0:8080"},
			{map[string]string{"JOBSTREAM_ADDR": ":9000"}, []string{"--dev"}, ":9000"},
			{nil, []string{"--addr", "127.0.0.1:9000"}, "127.0.0.1:9000"},
		} {
			c, err := parse(t, tc.env, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.ListenAddr(); got != tc.want {
				t.Errorf("env %v, args %q: listens on %q, want %q", tc.env, tc.args, got, tc.want)
			}
		}
		// A Serve built in code from Default() listens as serve does.
		d := Default()
		d.Dev = true
		if got := d.ListenAddr(); got != DefaultDevAddr {
			t.Errorf("Default() with Dev listens on %q, want %q", got, DefaultDevAddr)
		}
	})

	t.Run("FlagDefaultsAreDefault", func(t *testing.T) {
		t.Parallel()
		// One source of truth: `serve` with no flag and no environment
		// runs exactly config.Default(), which tests and the bench start
		// from; it validates, and it has production's per-key limits.
		c, err := parse(t, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := Default()
		if !reflect.DeepEqual(*c, d) {
			t.Errorf("flag defaults differ from Default():\n flags   %+v\n Default %+v", *c, d)
		}
		if err := d.Validate(); err != nil {
			t.Errorf("Default() does not validate: %v", err)
		}
		if d.RateLimit <= 0 || d.MaxInFlight <= 0 {
			t.Errorf("Default() has no per-key limits: rate %v, in flight %d", d.RateLimit, d.MaxInFlight)
		}
		if err := (&Serve{}).Validate(); err == nil {
			t.Error("the zero Serve validates: a server built in code without Default() would run unlike production")
		}
	})

	t.Run("SetChangesOnlyNamedFlags", func(t *testing.T) {
		t.Parallel()
		c := Default()
		c.MaxConns = 4
		c.DatabaseURL = "postgres://x/y"
		if err := c.Set([]string{"--rate-limit", "0", "--lease-ttl", "3s"}); err != nil {
			t.Fatal(err)
		}
		want := Default()
		want.MaxConns, want.DatabaseURL, want.RateLimit, want.LeaseTTL = 4, "postgres://x/y", 0, 3*time.Second
		if !reflect.DeepEqual(c, want) {
			t.Errorf("after Set:\n got  %+v\n want %+v", c, want)
		}
		if err := c.Set([]string{"--max-conns", "1"}); err == nil || !strings.Contains(err.Error(), "--max-conns") {
			t.Errorf("Set(--max-conns 1) = %v, want a validation error", err)
		}
	})

	t.Run("EnvThenFlags", func(t *testing.T) {
		t.Parallel()
		env := map[string]string{"JOBSTREAM_ADDR": ":9000", "DATABASE_URL": "postgres://x/y", "JOBSTREAM_LEASE_TTL": "5s", "JOBSTREAM_DEV": "true"}
		c, err := parse(t, env, "--lease-ttl", "7s")
		if err != nil {
			t.Fatal(err)
		}
		if c.Addr != ":9000" || c.DatabaseURL != "postgres://x/y" || c.LeaseTTL != 7*time.Second || !c.Dev {
			t.Fatalf("got %+v", c)
		}
	})

	t.Run("TrustedProxies", func(t *testing.T) {
		t.Parallel()
		c, err := parse(t, map[string]string{"JOBSTREAM_TRUSTED_PROXIES": "10.1.2.3, 192.168.7.9/16 ,::1,"})
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Proxies()
		if err != nil || fmt.Sprint(p) != "[10.1.2.3/32 192.168.0.0/16 ::1/128]" {
			t.Fatalf("Proxies() = %v, %v", p, err)
		}
	})

	t.Run("BadValuesNamed", func(t *testing.T) {
		t.Parallel()
		for name, tc := range map[string]struct {
			env  map[string]string
			args []string
			want string
		}{
			"Role":               {args: []string{"--role", "both"}, want: "--role"},
			"Concurrency":        {args: []string{"--concurrency", "0"}, want: "--concurrency"},
			"LeaseTTL":           {args: []string{"--lease-ttl", "10ms"}, want: "--lease-ttl"},
			"MaxRuntime":         {args: []string{"--max-runtime", "0s"}, want: "--max-runtime"},
			"MaxExpensive":       {args: []string{"--max-inflight-expensive", "-1"}, want: "--max-inflight-expensive"},
			"EnvMaxRunning":      {env: map[string]string{"JOBSTREAM_MAX_RUNNING_PER_TENANT": "half"}, want: "JOBSTREAM_MAX_RUNNING_PER_TENANT"},
			"MaxConns":           {args: []string{"--max-conns", "1"}, want: "--max-conns"},
			"LogLevel":           {args: []string{"--log-level", "loud"}, want: "--log-level"},
			"SessionTTL":         {args: []string{"--session-ttl", "-1h"}, want: "--session-ttl"},
			"OverloadWait":       {args: []string{"--overload-wait", "-1s"}, want: "--overload-wait"},
			"EnvOverloadWait":    {env: map[string]string{"JOBSTREAM_OVERLOAD_WAIT": "soon"}, want: "JOBSTREAM_OVERLOAD_WAIT"},
			"EnvInt":             {env: map[string]string{"JOBSTREAM_CONCURRENCY": "many"}, want: "JOBSTREAM_CONCURRENCY"},
			"EnvDuration":        {env: map[string]string{"JOBSTREAM_LEASE_TTL": "30"}, want: "JOBSTREAM_LEASE_TTL"},
			"EnvBool":            {env: map[string]string{"JOBSTREAM_DEV": "yes please"}, want: "JOBSTREAM_DEV"},
			"TrustedProxyName":   {args: []string{"--trusted-proxies", "10.0.0.1, proxy.example"}, want: `--trusted-proxies: "proxy.example"`},
			"TrustedProxyPrefix": {args: []string{"--trusted-proxies", "10.0.0.0/33"}, want: "--trusted-proxies"},
			"EnvTrustedProxies":  {env: map[string]string{"JOBSTREAM_TRUSTED_PROXIES": "*"}, want: "--trusted-proxies"},
		} {
			_, err := parse(t, tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: err = %v, want one naming %s", name, err, tc.want)
			}
		}
	})
}

// TestServerDatabaseURL: the serving role's connection string comes from
// JOBSTREAM_SERVER_DATABASE_URL, else --server-database-url wins; a
// connection string that does not parse is named, without its password.
func TestServerDatabaseURL(t *testing.T) {
	t.Parallel()
	env := map[string]string{"JOBSTREAM_SERVER_DATABASE_URL": "postgres://jobstream_server@db/x"}
	if c, err := parse(t, env); err != nil || c.ServerDatabaseURL != "postgres://jobstream_server@db/x" {
		t.Errorf("from the environment: %+v, %v", c, err)
	}
	if c, err := parse(t, env, "--server-database-url", "postgres://other@db/x"); err != nil || c.ServerDatabaseURL != "postgres://other@db/x" {
		t.Errorf("flag over the environment: %+v, %v", c, err)
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
	}{
		"--server-database-url": {args: []string{"--server-database-url", "postgres://u:hunter2@db:notaport/x"}},
		"--listener-url":        {args: []string{"--listener-url", "postgres://u@db/x?password=hunter2&port=notaport"}},
		"DATABASE_URL":          {env: map[string]string{"DATABASE_URL": "host=db password=hunter2 port=notaport"}},
	} {
		_, err := parse(t, tc.env, tc.args...)
		if err == nil || !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("bad %s: %v; want an error naming it, without the password", name, err)
		}
	}
}

func TestRetention(t *testing.T) {
	t.Parallel()
	c, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Retention.Interval != time.Hour {
		t.Errorf("retention = %+v, want a pass every 1h", c.Retention)
	}
	// The default moved into the database: the old variable is an error
	// that says where, not silently ignored.
	if _, err := parse(t, map[string]string{"JOBSTREAM_RETENTION_DAYS": "30"}); err == nil || !strings.Contains(err.Error(), "retention set --default") {
		t.Errorf("JOBSTREAM_RETENTION_DAYS: %v", err)
	}
	if _, err := parse(t, nil, "--retention-days", "30"); err == nil {
		t.Error("--retention-days is accepted; the default lives in the database now")
	}
	if _, err := parse(t, map[string]string{"JOBSTREAM_RETENTION_INTERVAL": "soon"}); err == nil || !strings.Contains(err.Error(), "JOBSTREAM_RETENTION_INTERVAL") {
		t.Errorf("bad interval: %v", err)
	}
}

// TestFairness: the per-tenant cap and the runtime bound have defaults
// that bound a flood (a cap below --concurrency, an hour), and each is set
// by its flag or environment variable.
func TestFairness(t *testing.T) {
	t.Parallel()
	c, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxInFlightExpensive != 4 {
		t.Errorf("default --max-inflight-expensive %d, want 4", c.MaxInFlightExpensive)
	}
	if c.MaxRunningPerTenant != 0 || c.MaxRuntime != time.Hour {
		t.Errorf("defaults: max running per tenant %d (0: three quarters of --concurrency), max runtime %s, want 0 and 1h", c.MaxRunningPerTenant, c.MaxRuntime)
	}
	c, err = parse(t, map[string]string{"JOBSTREAM_MAX_RUNNING_PER_TENANT": "5", "JOBSTREAM_MAX_RUNTIME": "10m"})
	if err != nil || c.MaxRunningPerTenant != 5 || c.MaxRuntime != 10*time.Minute {
		t.Errorf("from the environment: %+v, %v", c, err)
	}
	c, err = parse(t, nil, "--max-running-per-tenant", "-1", "--max-runtime", "90s")
	if err != nil || c.MaxRunningPerTenant != -1 || c.MaxRuntime != 90*time.Second {
		t.Errorf("from flags: %+v, %v", c, err)
	}
}
