package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"
)

// Log configures the transparency log's signing (internal/ledger). The
// log grows on every node whatever this says; checkpoints are signed only
// with a key.
type Log struct {
	// KeyFile is the signer key file (`jobstream log keygen`), never kept
	// in the database. Env JOBSTREAM_LOG_KEY. Empty: no checkpoints.
	KeyFile string
	// CheckpointDir, if set, receives every checkpoint this node signs.
	// Env JOBSTREAM_CHECKPOINT_DIR.
	CheckpointDir string
	// CheckpointInterval is the least time between checkpoints (one is
	// signed only when the log has grown). Env
	// JOBSTREAM_CHECKPOINT_INTERVAL. Defaults to 5s (0 = the default).
	CheckpointInterval time.Duration

	envErrs []error
}

// DefaultCheckpointInterval is Log.CheckpointInterval's default.
const DefaultCheckpointInterval = 5 * time.Second

// DefaultLog is Log's part of Default().
func DefaultLog() Log { return Log{CheckpointInterval: DefaultCheckpointInterval} }

func (c *Log) register(fs *flag.FlagSet, getenv func(string) string, d Log) {
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&c.KeyFile, "log-key", env("JOBSTREAM_LOG_KEY", d.KeyFile), "signer key file of the transparency log ('jobstream log keygen'): sign checkpoints with it (env JOBSTREAM_LOG_KEY; default: sign none)")
	fs.StringVar(&c.CheckpointDir, "checkpoint-dir", env("JOBSTREAM_CHECKPOINT_DIR", d.CheckpointDir), "directory receiving every checkpoint signed, as <size>.checkpoint and checkpoint (the latest), to ship to WORM storage (env JOBSTREAM_CHECKPOINT_DIR)")
	interval := d.CheckpointInterval
	if v := getenv("JOBSTREAM_CHECKPOINT_INTERVAL"); v != "" {
		p, err := time.ParseDuration(v)
		if err != nil {
			c.envErrs = append(c.envErrs, fmt.Errorf("JOBSTREAM_CHECKPOINT_INTERVAL must be a duration such as 5s, got %q", v))
		}
		interval = p
	}
	fs.DurationVar(&c.CheckpointInterval, "checkpoint-interval", interval, "least time between two checkpoints; one is signed only when the log has grown (env JOBSTREAM_CHECKPOINT_INTERVAL)")
}

// Validate returns every problem with c, joined. The key file must exist
// and be private to its owner; its contents are checked when serve loads it.
func (c *Log) Validate() error {
	errs := append([]error(nil), c.envErrs...)
	if c.CheckpointInterval != 0 && (c.CheckpointInterval < time.Second || c.CheckpointInterval > time.Hour) {
		errs = append(errs, fmt.Errorf("--checkpoint-interval must be between 1s and 1h, got %s", c.CheckpointInterval))
	}
	if c.KeyFile != "" {
		fi, err := os.Stat(c.KeyFile)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--log-key: %w", err))
		case !fi.Mode().IsRegular():
			errs = append(errs, fmt.Errorf("--log-key %s is not a file", c.KeyFile))
		case fi.Mode().Perm()&0o077 != 0:
			errs = append(errs, fmt.Errorf("--log-key %s is readable by others (mode %s): chmod 600 it", c.KeyFile, fi.Mode().Perm()))
		}
	}
	if c.CheckpointDir != "" {
		if c.KeyFile == "" {
			errs = append(errs, errors.New("--checkpoint-dir needs --log-key: without a key no checkpoint is signed"))
		}
		if fi, err := os.Stat(c.CheckpointDir); err != nil || !fi.IsDir() {
			errs = append(errs, fmt.Errorf("--checkpoint-dir %s is not a directory", c.CheckpointDir))
		}
	}
	return errors.Join(errs...)
}
