package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jobstream/jobstream/internal/export"
	"github.com/jobstream/jobstream/internal/store"
)

const exportAbout = `Write jobs' stored records as JSON Lines, for discovery and offline audit:
for each job a "job" line (with its chunk_count and final_hash), its
"chunk" lines in seq order (each with its data exactly as stored, as a
string, and its chain hash) and its audit "event" lines. When the
transparency log has a signed checkpoint, the export starts with a
"checkpoint" line (the latest), and each logged job's line carries its
log_index, leaf and inclusion_proof against it. Check an export with
'jobstream verify --export FILE [--verifier-key K]', or without jobstream
with the Python checker in internal/export/README.md (chains only). Every export is recorded in
admin_events (event export: who ran it, the selection, the number of jobs).

  export JOB_ID [JOB_ID...]
  export --tenant T [--since T]     every job of a tenant (created since T)

--since takes an RFC 3339 time, a date (2006-01-02) or a duration ago (24h).
The database is found as for 'serve'.`

func cmdExport(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "export", "JOB_ID... | --tenant T [--since T] [--out FILE]", exportAbout)
	tenant := fs.String("tenant", "", "export every job of this tenant")
	since := fs.String("since", "", "with --tenant: only jobs created at or after T")
	out := fs.String("out", "", "write to FILE instead of standard output")
	dataDir := dataDirFlag(e, fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if (*tenant != "") == (len(pos) > 0) {
		return usagef("export needs job ids or --tenant (run 'jobstream export --help')")
	}
	if *since != "" && *tenant == "" {
		return usagef("--since goes with --tenant")
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

	dst := e.stdout
	if *out != "" {
		file, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer file.Close()
		dst = file
	}
	w := bufio.NewWriter(dst)
	// The latest signed checkpoint first, then each job with its leaf and
	// inclusion proof against it (none yet: no checkpoint line, no proofs).
	prover, err := export.NewProver(ctx, st)
	if err != nil {
		return err
	}
	if prover.Checkpoint != nil {
		if err := export.WriteCheckpoint(w, prover.Checkpoint.Note); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(e.stderr, "export: the log has no signed checkpoint yet: the export carries no proofs ('serve --log-key' signs them)")
	}
	n := 0
	write := func(r store.Record) error {
		p, err := prover.Prove(ctx, r.Job.ID)
		if err != nil {
			return err
		}
		if err := export.WriteProof(w, r, p); err != nil {
			return err
		}
		n++
		return nil
	}
	if *tenant != "" {
		err = st.Records(ctx, f, write)
	} else {
		for _, id := range ids {
			r, rerr := st.Record(ctx, id)
			if errors.Is(rerr, store.ErrNotFound) {
				err = fmt.Errorf("job %s not found", id)
				break
			}
			if rerr != nil {
				err = rerr
				break
			}
			if err = write(r); err != nil {
				break
			}
		}
	}
	if err == nil {
		if ferr := w.Flush(); ferr != nil {
			err = fmt.Errorf("write export: %w", ferr)
		}
	}
	// Every export is in the record (admin_events), also one that failed
	// part way: records may have left already. n counts the jobs handed
	// to the writer.
	filter := store.ExportFilter{IDs: ids, Tenant: f.Tenant, Since: f.Since}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, rerr := st.RecordExport(rctx, filter, n, err == nil); rerr != nil {
		return errors.Join(err, fmt.Errorf("the export of %d jobs is not recorded: %w", n, rerr))
	}
	if err != nil {
		return err
	}
	if *out != "" {
		if f, ok := dst.(*os.File); ok {
			return f.Close()
		}
	}
	return nil
}
