package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/store"
)

const holdAbout = `Place a legal hold on a job: retention keeps the job and all its chunks
whatever its tenant's policy, until 'jobstream unhold JOB_ID'. Without a job
id, list the holds. Clients can hold their own jobs with
POST /v1/jobs/{id}/hold. The database is found as for 'serve'.`

func cmdHold(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "hold", "[JOB_ID] [--reason TEXT]", holdAbout)
	reason := fs.String("reason", "", "why the job is held, e.g. a case number")
	dataDir := dataDirFlag(e, fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 1 {
		return usagef("hold takes at most one job id")
	}
	var id uuid.UUID
	if len(pos) == 1 {
		if id, err = uuid.Parse(pos[0]); err != nil {
			return usagef("%q is not a job id", pos[0])
		}
	}
	st, closeDB, err := keyStore(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	defer closeDB()
	if len(pos) == 0 {
		holds, err := st.HoldList(ctx, "")
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "JOB\tTENANT\tHELD AT\tBY\tREASON")
		for _, h := range holds {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.JobID, h.Tenant, h.HeldAt.UTC().Format(time.RFC3339), h.HeldBy, h.Reason)
		}
		return tw.Flush()
	}
	h, err := st.HoldSet(ctx, "", id, strings.TrimSpace(*reason), "cli")
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("no job %s", id)
	case errors.Is(err, store.ErrRetained):
		return fmt.Errorf("job %s is already being removed by retention", id)
	case err != nil:
		return err
	}
	fmt.Fprintf(e.stdout, "held %s since %s\n", h.JobID, h.HeldAt.UTC().Format(time.RFC3339))
	return nil
}

func cmdUnhold(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "unhold", "JOB_ID", "Lift the legal hold on a job: retention treats it by its tenant's policy again.")
	dataDir := dataDirFlag(e, fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) != 1 {
		return usagef("unhold needs exactly one job id")
	}
	id, err := uuid.Parse(pos[0])
	if err != nil {
		return usagef("%q is not a job id", pos[0])
	}
	st, closeDB, err := keyStore(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	defer closeDB()
	if err := st.HoldClear(ctx, "", id, "cli"); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("job %s is not held", id)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "unheld %s\n", id)
	return nil
}
