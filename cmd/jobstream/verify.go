package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/chain"
	"github.com/jobstream/jobstream/internal/export"
	"github.com/jobstream/jobstream/internal/store"
)

const verifyAbout = `Recompute jobs' hash chains from the database and check them against the
stored hashes, chunk counts and final hashes (see internal/chain/README.md),
and that every finished job ends with its finish chunk. Exit
status 0 when every job checked is intact, 1 when any is not: each broken
job is printed with the first seq where its chain breaks, or its
truncation. A running job verifies up to its last committed chunk.

  verify JOB_ID [JOB_ID...]            check these jobs
  verify --all [--since T] [--tenant T] check every job (created since T)
  verify --export FILE [--verifier-key K]
                                       check an export ('jobstream export')
                                       offline, without the database

T is an RFC 3339 time, a date (2006-01-02) or a duration ago (24h). The
database is found as for 'serve' (DATABASE_URL, else local, else private
cluster). sql/verify.sql does the same check with psql alone.

--export FILE (- for standard input) makes the checks of the Python checker
in internal/export/README.md, with the same messages: every job's chain
from its seed, seq gap-free from 0, chunk_count and final_hash against its
job line, the finish chunk, one job line per job. It prints one line per
malformed line and per broken job, then a summary, and exits 1 when any
job is broken, any line malformed, or the file holds no job.

--verifier-key K (the log's verifier key, or a file holding it) with
--export also checks the transparency log's proofs offline: the export's
checkpoint line must open with K, each job's leaf must be the one its job
line's fields give, and its inclusion proof must verify against the
checkpoint's root. A job without a leaf, or logged after the checkpoint,
is printed NOT YET LOGGED (not a failure); a bad leaf or proof is printed
PROOF BAD and exits 1, and so does a missing or forged checkpoint.`

func cmdVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "verify", "JOB_ID... | --all [--since T] [--tenant T] | --export FILE [--verifier-key K]", verifyAbout)
	all := fs.Bool("all", false, "verify every job")
	exportFile := fs.String("export", "", "verify the export in FILE (- for standard input) instead of the database")
	verifierKey := fs.String("verifier-key", "", "with --export: the log's verifier key, or a file holding it: check the export's proofs too")
	since := fs.String("since", "", "with --all: only jobs created at or after T")
	tenant := fs.String("tenant", "", "with --all: only this tenant's jobs")
	asJSON := fs.Bool("json", false, `print one {"job_id":..,"ok":..,"chunks":..,"first_bad_seq":..,"reason":..} line per job`)
	dataDir := dataDirFlag(e, fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if *exportFile != "" {
		if *all || len(pos) > 0 || *since != "" || *tenant != "" || *asJSON {
			return usagef("--export FILE goes alone: no job ids, --all, --since, --tenant or --json")
		}
		vkey, err := readVerifierKey(*verifierKey)
		if err != nil {
			return err
		}
		return verifyExport(e, *exportFile, vkey)
	}
	if *verifierKey != "" {
		return usagef("--verifier-key goes with --export")
	}
	if *all == (len(pos) > 0) {
		return usagef("verify needs job ids, --all or --export (run 'jobstream verify --help')")
	}
	if !*all && (*since != "" || *tenant != "") {
		return usagef("--since and --tenant go with --all")
	}
	ids, f, err := jobSelection(pos, *tenant, *since)
	if err != nil {
		return err
	}
	pool, err := connect(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	defer pool.Close()
	st := store.New(pool)

	var checked, broken int
	report := func(id uuid.UUID, r chain.Result) error {
		checked++
		if !r.OK {
			broken++
		}
		switch {
		case *asJSON:
			b, _ := json.Marshal(struct {
				JobID uuid.UUID `json:"job_id"`
				chain.Result
			}{id, r})
			fmt.Fprintf(e.stdout, "%s\n", b)
		case r.OK && *all:
			// --all names only the broken jobs, then sums up.
		case r.OK:
			fmt.Fprintf(e.stdout, "%s ok: %d chunks, %s\n", id, r.Chunks, r.Reason)
		case r.FirstBadSeq != nil:
			fmt.Fprintf(e.stdout, "%s BROKEN at seq %d: %s\n", id, *r.FirstBadSeq, r.Reason)
		default:
			fmt.Fprintf(e.stdout, "%s BROKEN: %s\n", id, r.Reason)
		}
		return nil
	}
	if *all {
		if err := st.VerifyAll(ctx, f, report); err != nil {
			return err
		}
		// Chunks no job accounts for: their job row was removed outside
		// retention, or they were inserted past every guard.
		orphans, err := st.ChunkOrphans(ctx)
		if err != nil {
			return err
		}
		for _, id := range orphans {
			checked++
			if err := report(id, chain.Result{Reason: chain.ReasonOrphan}); err != nil {
				return err
			}
		}
		if !*asJSON {
			fmt.Fprintf(e.stdout, "%d jobs verified: %d intact, %d broken\n", checked, checked-broken, broken)
		}
	} else {
		for _, id := range ids {
			r, err := st.Verify(ctx, "", id)
			if errors.Is(err, store.ErrNotFound) {
				fmt.Fprintf(e.stdout, "%s NOT FOUND\n", id)
				broken++
				continue
			}
			if err != nil {
				return err
			}
			if err := report(id, r); err != nil {
				return err
			}
		}
	}
	if broken > 0 {
		return errSilent
	}
	return nil
}

// readVerifierKey reads a verifier key given as itself or as a file
// holding it; "" stays "".
func readVerifierKey(arg string) (string, error) {
	if arg == "" || strings.Contains(arg, "+") {
		return arg, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return "", usagef("--verifier-key is neither a key nor a readable file: %v", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// verifyExport checks an export file offline (export.CheckWith), its
// proofs too when vkey is set.
func verifyExport(e *env, path, vkey string) error {
	in := e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("verify --export: %w", err)
		}
		defer f.Close()
		in = f
	}
	sum, err := export.CheckWith(in, e.stdout, export.CheckOptions{VerifierKey: vkey})
	if err != nil {
		return fmt.Errorf("verify --export %s: %w", path, err)
	}
	if !sum.OK() {
		return errSilent
	}
	return nil
}

// jobSelection reads the jobs a command names: ids as arguments, or a
// filter by tenant and creation time.
func jobSelection(args []string, tenant, since string) ([]uuid.UUID, store.JobFilter, error) {
	var ids []uuid.UUID
	for _, a := range args {
		id, err := uuid.Parse(a)
		if err != nil {
			return nil, store.JobFilter{}, usagef("%q is not a job id", a)
		}
		ids = append(ids, id)
	}
	f := store.JobFilter{Tenant: tenant}
	if since != "" {
		t, err := parseSince(since, time.Now())
		if err != nil {
			return nil, store.JobFilter{}, usageError{err.Error()}
		}
		f.Since = t
	}
	return ids, f, nil
}

// parseSince reads an RFC 3339 time, a date, or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration ago (24h)", s)
}
