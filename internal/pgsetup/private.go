package pgsetup

import "context"

// ResolvePrivate is Resolve restricted to the private cluster in
// cfg.DataDir: it ignores DATABASE_URL and never looks for a local server,
// and it initialises and starts the cluster as needed. Result.Stop is set
// when this call started it. Fault-injection tests use it to own a server
// they may stop and restart without touching the machine's shared one.
func ResolvePrivate(ctx context.Context, cfg Config) (Result, error) {
	cfg.DatabaseURL = ""
	cfg.noLocal = true
	return Resolve(ctx, cfg)
}
