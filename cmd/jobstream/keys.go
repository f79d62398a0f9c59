package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jobstream/jobstream/internal/auth"
	"github.com/jobstream/jobstream/internal/store"
)

const keysAbout = `Manage API keys, which authenticate clients on both APIs: the native /v1
API and the SEMOSS /Monolith/api (HTTP Basic access_key:secret_key; SEMOSS
clients take them as access_key and secret_key).

  keys create --name NAME [--tenant T] [--json]   print a new access key and secret key
  keys list [--json]                               list keys (never secrets)
  keys revoke ACCESS_KEY|ID                        revoke a key, end its sessions, cancel its jobs

A key sees only its own jobs: its tenant is its own id unless --tenant gives
several keys the same one. The secret key is printed once; only its SHA-256
is stored. Revocation takes effect on every server within 5 s (their
credential caches' lifetime). The database is found as for 'serve'
(DATABASE_URL, else local, else private cluster) and migrated if needed.`

func cmdKeys(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("keys needs a subcommand: create, list or revoke (run 'jobstream keys --help')")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(e.stdout, "Usage: jobstream keys create|list|revoke [flags]\n\n%s\n", keysAbout)
		return nil
	case "create":
		return cmdKeysCreate(ctx, e, args[1:])
	case "list":
		return cmdKeysList(ctx, e, args[1:])
	case "revoke":
		return cmdKeysRevoke(ctx, e, args[1:])
	}
	return usagef("unknown keys subcommand %q: want create, list or revoke", args[0])
}

// keyStore connects like `migrate` and makes sure the schema is there, so
// keys can be created before the first `serve`.
func keyStore(ctx context.Context, e *env, dataDir string) (*store.Store, func(), error) {
	pool, err := connect(ctx, e, dataDir)
	if err != nil {
		return nil, nil, err
	}
	if err := store.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, nil, err
	}
	return store.New(pool), pool.Close, nil
}

func dataDirFlag(e *env, fs interface {
	String(name, value, usage string) *string
}) *string {
	return fs.String("data-dir", e.getenv("JOBSTREAM_DATA_DIR"), "data directory for the private PostgreSQL cluster (env JOBSTREAM_DATA_DIR)")
}

func cmdKeysCreate(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "keys create", "--name NAME [--tenant T] [--json]", "Create an API key and print its access key and secret key (shown once).")
	name := fs.String("name", "", "what the key is for, e.g. a person or an app (required)")
	tenant := fs.String("tenant", "", "tenant whose jobs the key owns and sees (default: a tenant of its own)")
	asJSON := fs.Bool("json", false, `print {"access_key":..,"secret_key":..}`)
	dataDir := dataDirFlag(e, fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 {
		return usagef("keys create takes no arguments, got %q", pos)
	}
	*name = strings.TrimSpace(*name)
	if *name == "" {
		return usagef("keys create needs --name, e.g. jobstream keys create --name alice")
	}
	if len(*name) > 200 || len(*tenant) > 200 {
		return usagef("--name and --tenant must be at most 200 bytes")
	}
	st, closeDB, err := keyStore(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	defer closeDB()
	key, secret, err := auth.CreateKey(ctx, st, *name, strings.TrimSpace(*tenant))
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(map[string]string{"access_key": key.AccessKey, "secret_key": secret})
	}
	fmt.Fprintf(e.stdout, "access key: %s\nsecret key: %s\n", key.AccessKey, secret)
	fmt.Fprintf(e.stderr, "key %q created (id %s, tenant %s); the secret key is not stored: keep it now\n", key.Name, key.ID, key.Tenant)
	return nil
}

// keyInfo is a key as `keys list --json` prints it.
type keyInfo struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Tenant    string     `json:"tenant"`
	AccessKey string     `json:"access_key"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

func cmdKeysList(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "keys list", "[--json]", "List API keys (never their secrets), oldest first.")
	asJSON := fs.Bool("json", false, "print a JSON list")
	dataDir := dataDirFlag(e, fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 {
		return usagef("keys list takes no arguments, got %q", pos)
	}
	st, closeDB, err := keyStore(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	defer closeDB()
	keys, err := st.KeyList(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]keyInfo, len(keys))
		for i, k := range keys {
			out[i] = keyInfo{ID: k.ID.String(), Name: k.Name, Tenant: k.Tenant, AccessKey: k.AccessKey, CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt}
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCESS KEY\tNAME\tTENANT\tCREATED\tREVOKED\tID")
	for _, k := range keys {
		revoked := "-"
		if k.RevokedAt != nil {
			revoked = k.RevokedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.AccessKey, k.Name, k.Tenant, k.CreatedAt.UTC().Format(time.RFC3339), revoked, k.ID)
	}
	return tw.Flush()
}

func cmdKeysRevoke(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "keys revoke", "ACCESS_KEY|ID", "Revoke an API key: it fails authentication from then on (within 5 s on every server; it can submit no job from the moment of revocation), its sessions end, and the jobs it submitted that have not ended are cancelled (queued ones at once, running ones by their workers), recorded in their audit trails as cancelled by cli:<your user name>.")
	dataDir := dataDirFlag(e, fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) != 1 || strings.TrimSpace(pos[0]) == "" {
		return usagef("keys revoke needs exactly one access key or key id")
	}
	st, closeDB, err := keyStore(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	defer closeDB()
	ref := strings.TrimSpace(pos[0])
	prev, ok, err := findKey(ctx, st, ref)
	if err != nil {
		return err
	}
	// Who revoked the key, for the audit trail of the jobs it cancels (the
	// database role is recorded too).
	ctx = store.WithActor(ctx, store.Actor{Name: cliActor(e)})
	res, err := st.KeyRevoke(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no key has access key or id %q (jobstream keys list shows them)", pos[0])
	}
	if err != nil {
		return err
	}
	key := res.Key
	if ok && prev.RevokedAt != nil {
		fmt.Fprintf(e.stdout, "%s (%s) was already revoked at %s\n", key.AccessKey, key.Name, prev.RevokedAt.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(e.stdout, "revoked %s (%s)\n", key.AccessKey, key.Name)
	}
	if n, m := len(res.Cancelled), len(res.Stopping); n+m > 0 {
		fmt.Fprintf(e.stdout, "cancelled %d queued jobs; %d running jobs are being stopped\n", n, m)
	}
	return nil
}

// findKey returns the key whose access key or id is ref, if any.
func findKey(ctx context.Context, st *store.Store, ref string) (store.APIKey, bool, error) {
	keys, err := st.KeyList(ctx)
	if err != nil {
		return store.APIKey{}, false, err
	}
	for _, k := range keys {
		if k.AccessKey == ref || k.ID.String() == ref {
			return k, true, nil
		}
	}
	return store.APIKey{}, false, nil
}
