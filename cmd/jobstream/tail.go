package main

import (
	"context"
)

const tailAbout = `Follow a job's chunks from --offset to the job's end, over SSE, resuming
after dropped connections. Prints each chunk as a JSON line; --text prints
only the assembled text.`

func cmdTail(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "tail", "JOB_ID [flags]", tailAbout)
	c := clientFlags(e, fs)
	offset := fs.Int("offset", 0, "first chunk seq to print")
	text := fs.Bool("text", false, "print text instead of JSON chunks")
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) != 1 {
		return usagef("tail needs exactly one job id")
	}
	if *offset < 0 {
		return usagef("--offset must not be negative")
	}
	return follow(ctx, e, c, pos[0], *offset, !*text)
}
