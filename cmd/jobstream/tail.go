package main

import (
	"context"
	"errors"

	"github.com/jobstream/jobstream/internal/httpapi"
)

const tailAbout = `Follow any job's output from --offset to the job's end, over SSE, resuming
after dropped connections: the text as it arrives (thinking dimmed on a
terminal), tool calls pretty-printed, then how the job ended, from the job's own
record. A finished job is printed at once. --json prints the raw chunks, one
JSON object per line. Control characters in the text are shown escaped, as for
'ask' (ESC as \x1b, C1 controls as \u00NN); --json prints the chunks as the
server sent them. The server and key are as for 'ask'.`

func cmdTail(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "tail", "JOB_ID [flags]", tailAbout)
	c := clientFlags(e, fs)
	offset := fs.Int("offset", 0, "first chunk seq to print")
	asJSON := fs.Bool("json", false, "print the raw chunks, one JSON object per line")
	_ = fs.Bool("text", true, "print the text (the default; for scripts written before --json)")
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) != 1 {
		return usagef("tail needs exactly one job id, e.g. jobstream tail 01a2335e-e3ce-787a-b1e5-82e03437dbc4 (jobstream jobs lists them)")
	}
	if *offset < 0 {
		return usagef("--offset must not be negative")
	}
	id, err := httpapi.ParseJobID(pos[0])
	if err != nil {
		return usagef("%v", err)
	}
	if err := checkKey(c); err != nil {
		return err
	}
	err = follow(ctx, e, c, id, *offset, *asJSON)
	if err != nil && !errors.Is(err, errSilent) {
		return explain(ctx, c, err)
	}
	return err
}
