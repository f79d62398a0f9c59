package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jobstream/jobstream/internal/store"
)

const holdAbout = `Place a legal hold on a job: retention keeps the job and all its chunks
whatever its tenant's policy, until 'jobstream unhold JOB_ID'. Without a job
id, list the holds. The hold has operator authority: the tenant's own key
cannot lift it (DELETE /v1/jobs/{id}/hold answers 403); clients hold their
own jobs, with tenant authority, with POST /v1/jobs/{id}/hold. A job the
tenant holds becomes the operator's. The hold records --actor (default:
your OS user@host) as who placed it. Needs the database owner's connection
(the server's role may not place operator holds); the database is found as
for 'serve'.`

// maxHoldText caps --reason and --actor, as the API caps a reason.
const maxHoldText = 1000

// actorFlag adds --actor: the person placing or lifting a hold, recorded
// in job_holds and the audit trail instead of an anonymous "cli".
func actorFlag(fs interface {
	String(name, value, usage string) *string
}) *string {
	return fs.String("actor", "", "who you are, recorded as placing or lifting the hold (default: OS user@host)")
}

// holdActorName returns the actor for the audit trail: --actor, else the
// OS user at this host.
func holdActorName(e *env, flag string) (string, error) {
	a := strings.TrimSpace(flag)
	if a == "" {
		a = osUser(e)
	}
	if len(a) > maxHoldText {
		return "", usagef("--actor must be at most %d bytes", maxHoldText)
	}
	if err := store.CheckText("--actor", a); err != nil {
		return "", usagef("%v", err)
	}
	return a, nil
}

func cmdHold(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "hold", "[JOB_ID] [--reason TEXT] [--actor WHO]", holdAbout)
	reason := fs.String("reason", "", "why the job is held, e.g. a case number")
	actorArg := actorFlag(fs)
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
	*reason = strings.TrimSpace(*reason)
	if len(*reason) > maxHoldText {
		return usagef("--reason must be at most %d bytes", maxHoldText)
	}
	if err := store.CheckText("--reason", *reason); err != nil {
		return usagef("%v", err)
	}
	actor, err := holdActorName(e, *actorArg)
	if err != nil {
		return err
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
		fmt.Fprintln(tw, "JOB\tTENANT\tHELD AT\tAUTHORITY\tBY\tREASON")
		for _, h := range holds {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.JobID, h.Tenant, h.HeldAt.UTC().Format(time.RFC3339), h.Authority, h.HeldBy, h.Reason)
		}
		return tw.Flush()
	}
	h, err := st.HoldPlaceOperator(ctx, id, *reason, actor)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("no job %s", id)
	case errors.Is(err, store.ErrRetained):
		return fmt.Errorf("job %s is already being removed by retention", id)
	case err != nil:
		return ownerHint(err)
	}
	fmt.Fprintf(e.stdout, "held %s since %s by %s (%s authority)\n", h.JobID, h.HeldAt.UTC().Format(time.RFC3339), h.HeldBy, h.Authority)
	return nil
}

func cmdUnhold(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "unhold", "JOB_ID [--actor WHO]", `Lift the legal hold on a job, whoever placed it: retention treats the job by
its tenant's policy again. The audit trail records --actor (default: your OS
user@host) as who lifted it. Needs the database owner's connection.`)
	actorArg := actorFlag(fs)
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
	actor, err := holdActorName(e, *actorArg)
	if err != nil {
		return err
	}
	st, closeDB, err := keyStore(ctx, e, *dataDir)
	if err != nil {
		return err
	}
	defer closeDB()
	h, err := st.HoldLiftOperator(ctx, id, actor)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("job %s is not held", id)
	case err != nil:
		return ownerHint(err)
	}
	fmt.Fprintf(e.stdout, "unheld %s (held by %s, %s authority, since %s)\n", id, h.HeldBy, h.Authority, h.HeldAt.UTC().Format(time.RFC3339))
	return nil
}

// ownerHint explains a refusal to execute the operator functions: the
// connection is not the database owner's (the server's login role, say).
func ownerHint(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" {
		return fmt.Errorf("%w (operator holds need the database owner's connection: set DATABASE_URL to it)", err)
	}
	return err
}
