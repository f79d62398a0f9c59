package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/store"
)

const eraseAbout = `Erase a job's content, keeping the evidence (a GDPR Art. 17 request): its
request text and its chunks' data (and a Responses API input, a SEMOSS
expression) are replaced by {"erased":true}; its ids, its chunks' seq, stream
types and hashes, its request's SHA-256 and its seal stay. The audit trail
records an erased event (who: --actor, default your OS user@host; why:
--reason, required) and the transparency log an erased leaf, in the same
transaction. 'jobstream verify' and 'jobstream audit' then report the job as
erased by whom, when and why, not as tampered with.

Refused for a held job (lift the hold first), a job that has not ended, a job
already erased, and a job whose chain does not verify (erasing it would
destroy the evidence of what was changed). Cannot be undone. Needs the
database owner's connection (the server's role may not erase); the database
is found as for 'serve'.`

func cmdErase(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "erase", "JOB_ID --reason TEXT [--actor WHO]", eraseAbout)
	reason := fs.String("reason", "", "why the job is erased, e.g. the request's reference (required)")
	actorArg := fs.String("actor", "", "who you are, recorded as erasing the job (default: OS user@host)")
	dataDir := dataDirFlag(e, fs)
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) != 1 {
		return usagef("erase needs exactly one job id")
	}
	id, err := uuid.Parse(pos[0])
	if err != nil {
		return usagef("%q is not a job id", pos[0])
	}
	*reason = strings.TrimSpace(*reason)
	switch {
	case *reason == "":
		return usagef("erase needs --reason")
	case len(*reason) > maxHoldText:
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
	at, err := st.Erase(ctx, id, *reason, actor)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("no job %s", id)
	case errors.Is(err, store.ErrNotErasable):
		return fmt.Errorf("job %s not erased: %w", id, err)
	case err != nil:
		return ownerHint(err)
	}
	fmt.Fprintf(e.stdout, "erased %s at %s by %s: %s\n", id, at.UTC().Format(time.RFC3339Nano), actor, *reason)
	return nil
}
