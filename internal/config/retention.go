package config

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/jobstream/jobstream/internal/retention"
)

// Retention configures retention, for `serve` and `retention run`.
type Retention struct {
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
	// The default moved into the database (retention_settings), where no
	// caller can pass another: say so rather than ignore it.
	if getenv("JOBSTREAM_RETENTION_DAYS") != "" {
		c.envErrs = append(c.envErrs, errors.New("JOBSTREAM_RETENTION_DAYS is no longer read: the server-wide default is kept in the database; set it with 'jobstream retention set --default --days N'"))
	}
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
	if c.Interval > 0 && c.Interval < time.Minute {
		errs = append(errs, fmt.Errorf("--retention-interval must be at least 1m (or negative: none), got %s", c.Interval))
	}
	return errors.Join(errs...)
}
