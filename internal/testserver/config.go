package testserver

import (
	"testing"

	"github.com/jobstream/jobstream/internal/config"
)

// ServeConfig is the configuration of an in-process server for a test on
// database db: serve's defaults (config.Default(), limits included), in dev
// mode on a free loopback port with a small pool, so that tests run the
// configuration production runs. args are further serve flags.
func ServeConfig(t testing.TB, db string, args ...string) config.Serve {
	t.Helper()
	c := config.Default()
	c.DatabaseURL = db
	if err := c.Set(append([]string{"--addr", "127.0.0.1:0", "--dev", "--max-conns", "4"}, args...)); err != nil {
		t.Fatalf("testserver: serve config: %v", err)
	}
	return c
}
