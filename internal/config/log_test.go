package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLog: --log-key must be a file only its owner can read;
// --checkpoint-dir needs a key and a directory; the environment sets both;
// a bad interval is refused.
func TestLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := filepath.Join(dir, "log.key")
	if err := os.WriteFile(key, []byte("PRIVATE+KEY+x+y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.key")
	if err := os.WriteFile(open, []byte("PRIVATE+KEY+x+y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := parse(t, nil)
	if err != nil || c.Log.KeyFile != "" || c.Log.CheckpointInterval != DefaultCheckpointInterval {
		t.Fatalf("defaults: %+v %v", c.Log, err)
	}
	c, err = parse(t, map[string]string{"JOBSTREAM_LOG_KEY": key, "JOBSTREAM_CHECKPOINT_DIR": dir, "JOBSTREAM_CHECKPOINT_INTERVAL": "10s"})
	if err != nil || c.Log.KeyFile != key || c.Log.CheckpointDir != dir || c.Log.CheckpointInterval != 10*time.Second {
		t.Fatalf("from the environment: %+v %v", c.Log, err)
	}
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--log-key", filepath.Join(dir, "missing")}, "--log-key"},
		{nil, []string{"--log-key", open}, "readable by others"},
		{nil, []string{"--log-key", dir}, "is not a file"},
		{nil, []string{"--checkpoint-dir", dir}, "needs --log-key"},
		{nil, []string{"--log-key", key, "--checkpoint-dir", key}, "not a directory"},
		{nil, []string{"--checkpoint-interval", "10ms"}, "between 1s and 1h"},
		{map[string]string{"JOBSTREAM_CHECKPOINT_INTERVAL": "soon"}, nil, "JOBSTREAM_CHECKPOINT_INTERVAL"},
	} {
		if _, err := parse(t, tc.env, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %q: %v, want %q", tc.env, tc.args, err, tc.want)
		}
	}
}
