package config

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/jobstream/jobstream/internal/retention"
)

// Retention configures retention, for `serve` and `retention run`.
type Retention struct {
	// DefaultDays is how many days the finished jobs of a tenant without a
	// policy of its own are kept (jobstream retention set); 0 keeps them
	// forever. Env JOBSTREAM_RETENTION_DAYS. Defaults to 0.
	DefaultDays int
	// Interval is the time between serve's retention passes (one node at a
	// time runs them); 0 means the default, negative disables them. Env
	// JOBSTREAM_RETENTION_INTERVAL. Defaults to 1h.
	Interval time.Duration

	envErrs []error
}

// DefaultRetention is Retention's part of Default().
func DefaultRetention() Retention {
	return Retention{Interval: retention.DefaultInterval}
}

// Flags registers Retention's flags on fs with env-derived defaults, else
// DefaultRetention()'s; withInterval adds --retention-interval (serve only).
func (c *Retention) Flags(fs *flag.FlagSet, getenv func(string) string, withInterval bool) {
	c.register(fs, getenv, DefaultRetention(), withInterval)
}

func (c *Retention) register(fs *flag.FlagSet, getenv func(string) string, d Retention, withInterval bool) {
	days := d.DefaultDays
	if v := getenv("JOBSTREAM_RETENTION_DAYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("JOBSTREAM_RETENTION_DAYS must be an integer, got %q", v))
		}
		days = n
	}
	fs.IntVar(&c.DefaultDays, "retention-days", days, "days finished jobs of tenants without a policy of their own are kept; 0 = forever (env JOBSTREAM_RETENTION_DAYS)")
	if !withInterval {
		return
	}
	interval := d.Interval
	if v := getenv("JOBSTREAM_RETENTION_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("JOBSTREAM_RETENTION_INTERVAL must be a duration such as 1h, got %q", v))
		}
		interval = d
	}
	fs.DurationVar(&c.Interval, "retention-interval", interval, "time between retention passes, run by one node at a time; negative = none (env JOBSTREAM_RETENTION_INTERVAL)")
}

// Validate returns every problem with c, joined.
func (c *Retention) Validate() error {
	errs := append([]error(nil), c.envErrs...)
	if c.DefaultDays < 0 {
		errs = append(errs, fmt.Errorf("--retention-days must not be negative, got %d", c.DefaultDays))
	}
	if c.Interval > 0 && c.Interval < time.Minute {
		errs = append(errs, fmt.Errorf("--retention-interval must be at least 1m (or negative: none), got %s", c.Interval))
	}
	return errors.Join(errs...)
}
