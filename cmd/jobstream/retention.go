package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jobstream/jobstream/internal/retention"
	"github.com/jobstream/jobstream/internal/store"
)

const retentionAbout = `Retention removes finished jobs, their chunks and their job rows once
they are older than their tenant's policy; the audit trail (job_events)
keeps a retention_deleted event for each, forever, naming who ran the pass,
the rule and time it judged by, and the removed job's seal. Held jobs
('jobstream hold') stay whatever the policy.

  retention run [--dry-run [--now T]]        run one pass and print what it removed
  retention set --tenant T --days N          keep tenant T's finished jobs N days (0 = forever)
  retention set --default --days N           keep the jobs of tenants without a policy N days (0 = forever)
  retention set --minimum --days N           no policy may keep jobs fewer than N days (0 = no minimum)
  retention clear --tenant T                 tenant T gets the server default again
  retention list                             print the server-wide rule and the tenants' policies

The default and the minimum are kept in the database, so every node and
every pass applies the same rule. A deleting pass judges by the database's
clock; --now (any time) is for --dry-run only. Changing the rule needs the
database owner's credentials, and every change is recorded (admin_events).
'serve' runs a pass every --retention-interval on one node at a time. A
pass drops whole days of chunks (partitions) where nothing in them must
stay, and deletes the other expired jobs in batches. The database is found
as for 'serve' (DATABASE_URL, else local, else private cluster).`

func cmdRetention(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("retention needs a subcommand: run, set, clear or list (run 'jobstream retention --help')")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(e.stdout, "Usage: jobstream retention run|set|clear|list [flags]\n\n%s\n", retentionAbout)
		return nil
	case "run":
		return cmdRetentionRun(ctx, e, args[1:])
	case "set":
		return cmdRetentionSet(ctx, e, args[1:])
	case "clear":
		return cmdRetentionClear(ctx, e, args[1:])
	case "list":
		return cmdRetentionList(ctx, e, args[1:])
	}
	return usagef("unknown retention subcommand %q: want run, set, clear or list", args[0])
}

// parseTime reads --now: RFC 3339, or a UTC date.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time such as 2027-01-31 or 2027-01-31T12:00:00Z", s)
}

func cmdRetentionRun(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "retention run", "[--dry-run [--now T]]",
		"Run one retention pass now and print what it removed (or, with --dry-run, what it would remove).")
	dryRun := fs.Bool("dry-run", false, "remove nothing; print what a pass would remove")
	nowFlag := fs.String("now", "", "with --dry-run: judge ages as at this time (RFC 3339 or a date), e.g. to preview a future pass; default the database's clock")
	dataDir := dataDirFlag(e, fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 {
		return usagef("retention run takes no arguments, got %q", pos)
	}
	var now time.Time
	if *nowFlag != "" && !*dryRun {
		return usagef("--now is for --dry-run only: a pass that deletes judges by the database's clock")
	}
	if *nowFlag != "" {
		if now, err = parseTime(*nowFlag); err != nil {
			return usagef("--now: %v", err)
		}
	}
	st, closeDB, err := keyStore(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	defer closeDB()
	if !*dryRun {
		release, ok, err := st.RetentionLead(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("another retention pass is running (a serve node's); try again later")
		}
		defer release()
	}
	rep, err := retention.Pass(ctx, st, retention.Options{Now: now, RanBy: cliActor(e), DryRun: *dryRun})
	rep.Print(e.stdout)
	return err
}

func tenantFlag(fs *flag.FlagSet) *string {
	return fs.String("tenant", "", "the tenant (required)")
}

func cmdRetentionSet(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "retention set", "--tenant T|--default|--minimum --days N",
		"Keep tenant T's finished jobs N days after their creation (0 = forever), whatever the server default;\n"+
			"or set the server-wide default (--default) or minimum (--minimum).")
	tenant := tenantFlag(fs)
	asDefault := fs.Bool("default", false, "set the server-wide default for tenants without a policy")
	asMinimum := fs.Bool("minimum", false, "set the server-wide minimum no policy may go below")
	days := fs.Int64("days", -1, fmt.Sprintf("days to keep, 0 to %d; 0 = forever (no minimum with --minimum) (required)", store.MaxRetentionDays))
	dataDir := dataDirFlag(e, fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	targets := 0
	for _, b := range []bool{strings.TrimSpace(*tenant) != "", *asDefault, *asMinimum} {
		if b {
			targets++
		}
	}
	if len(pos) > 0 || targets != 1 || *days < 0 {
		return usagef("retention set needs one of --tenant T, --default or --minimum, and --days N (N >= 0), e.g. jobstream retention set --tenant acme --days 30")
	}
	if *days > store.MaxRetentionDays {
		return usagef("--days %d is out of range: at most %d (about 273 years); 0 keeps forever", *days, store.MaxRetentionDays)
	}
	n := int(*days)
	st, closeDB, err := keyStore(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	defer closeDB()
	if *asDefault || *asMinimum {
		var def, minimum *int
		if *asDefault {
			def = &n
		} else {
			minimum = &n
		}
		s, err := st.RetentionSettingsSet(ctx, def, minimum)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "server default: %s; minimum: %s\n", keepText(s.DefaultDays), minimumText(s.MinDays))
		return nil
	}
	p, err := st.PolicySet(ctx, strings.TrimSpace(*tenant), n)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "tenant %s: %s\n", p.Tenant, keepText(p.KeepDays))
	return nil
}

func cmdRetentionClear(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "retention clear", "--tenant T", "Remove tenant T's policy: its jobs get the server default ('retention set --default') again.")
	tenant := tenantFlag(fs)
	dataDir := dataDirFlag(e, fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 || strings.TrimSpace(*tenant) == "" {
		return usagef("retention clear needs --tenant T")
	}
	st, closeDB, err := keyStore(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	defer closeDB()
	if err := st.PolicyDelete(ctx, strings.TrimSpace(*tenant)); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("tenant %q has no policy of its own", *tenant)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "tenant %s: server default\n", *tenant)
	return nil
}

func cmdRetentionList(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "retention list", "", "Print every tenant's retention policy (tenants not listed get the server default).")
	dataDir := dataDirFlag(e, fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 {
		return usagef("retention list takes no arguments")
	}
	st, closeDB, err := keyStore(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	defer closeDB()
	s, err := st.RetentionSettingsGet(ctx)
	if err != nil {
		return err
	}
	ps, err := st.PolicyList(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "server default: %s; minimum: %s\n", keepText(s.DefaultDays), minimumText(s.MinDays))
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tKEEP\tUPDATED")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Tenant, keepText(p.KeepDays), p.UpdatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func keepText(days int) string {
	if days == 0 {
		return "forever"
	}
	return fmt.Sprintf("%d days", days)
}

func minimumText(days int) string {
	if days == 0 {
		return "none"
	}
	return fmt.Sprintf("%d days", days)
}
