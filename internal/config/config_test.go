package config

import (
	"flag"
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
		if c.Addr != ":8080" || c.Role != RoleAll || c.LeaseTTL != 30*time.Second || c.Dev || c.PollOnly || c.CSRF || c.SessionTTL != 24*time.Hour {
			t.Fatalf("defaults = %+v", c)
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

	t.Run("BadValuesNamed", func(t *testing.T) {
		t.Parallel()
		for name, tc := range map[string]struct {
			env  map[string]string
			args []string
			want string
		}{
			"Role":            {args: []string{"--role", "both"}, want: "--role"},
			"Concurrency":     {args: []string{"--concurrency", "0"}, want: "--concurrency"},
			"LeaseTTL":        {args: []string{"--lease-ttl", "10ms"}, want: "--lease-ttl"},
			"MaxRuntime":      {args: []string{"--max-runtime", "0s"}, want: "--max-runtime"},
			"MaxExpensive":    {args: []string{"--max-inflight-expensive", "-1"}, want: "--max-inflight-expensive"},
			"EnvMaxRunning":   {env: map[string]string{"JOBSTREAM_MAX_RUNNING_PER_TENANT": "half"}, want: "JOBSTREAM_MAX_RUNNING_PER_TENANT"},
			"MaxConns":        {args: []string{"--max-conns", "1"}, want: "--max-conns"},
			"LogLevel":        {args: []string{"--log-level", "loud"}, want: "--log-level"},
			"SessionTTL":      {args: []string{"--session-ttl", "-1h"}, want: "--session-ttl"},
			"OverloadWait":    {args: []string{"--overload-wait", "-1s"}, want: "--overload-wait"},
			"EnvOverloadWait": {env: map[string]string{"JOBSTREAM_OVERLOAD_WAIT": "soon"}, want: "JOBSTREAM_OVERLOAD_WAIT"},
			"EnvInt":          {env: map[string]string{"JOBSTREAM_CONCURRENCY": "many"}, want: "JOBSTREAM_CONCURRENCY"},
			"EnvDuration":     {env: map[string]string{"JOBSTREAM_LEASE_TTL": "30"}, want: "JOBSTREAM_LEASE_TTL"},
			"EnvBool":         {env: map[string]string{"JOBSTREAM_DEV": "yes please"}, want: "JOBSTREAM_DEV"},
		} {
			_, err := parse(t, tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: err = %v, want one naming %s", name, err, tc.want)
			}
		}
	})
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

func TestRetention(t *testing.T) {
	t.Parallel()
	c, err := parse(t, map[string]string{"JOBSTREAM_RETENTION_DAYS": "30"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Retention.DefaultDays != 30 || c.Retention.Interval != time.Hour {
		t.Errorf("retention = %+v, want 30 days every 1h", c.Retention)
	}
	if _, err := parse(t, nil, "--retention-days", "-1"); err == nil || !strings.Contains(err.Error(), "--retention-days") {
		t.Errorf("negative days: %v", err)
	}
	if _, err := parse(t, map[string]string{"JOBSTREAM_RETENTION_INTERVAL": "soon"}); err == nil || !strings.Contains(err.Error(), "JOBSTREAM_RETENTION_INTERVAL") {
		t.Errorf("bad interval: %v", err)
	}
}
