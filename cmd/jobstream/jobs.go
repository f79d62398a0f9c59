package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/client"
	"github.com/jobstream/jobstream/internal/jobsapi"
	"github.com/jobstream/jobstream/internal/store"
)

const jobsAbout = `List the key's recent jobs, newest first, as a table: id, status, engine, age,
output tokens and time to first token (TTFT: from submission to the first
stored chunk). --json prints the same as a JSON list. The server and key are as
for 'ask'; 'jobstream tail JOB_ID' follows one.`

// jobRow is a job as `jobs --json` prints it: the API's job plus its time
// to first token.
type jobRow struct {
	jobsapi.Job
	TTFTMillis *int64 `json:"ttft_ms,omitempty"`
}

func cmdJobs(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "jobs", "[--status S] [--engine E] [--limit N] [--json]", jobsAbout)
	c := clientFlags(e, fs)
	status := fs.String("status", "", "only jobs in this status: queued, running, completed, failed or cancelled")
	eng := fs.String("engine", "", "only jobs of this engine")
	limit := fs.Int("limit", 20, "most jobs to list (at most 500)")
	asJSON := fs.Bool("json", false, "print a JSON list")
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 {
		return usagef("jobs takes no arguments, got %q", pos)
	}
	switch *status {
	case "", store.StatusQueued, store.StatusRunning, store.StatusCompleted, store.StatusFailed, store.StatusCancelled:
	default:
		return usagef("--status must be queued, running, completed, failed or cancelled, got %q", *status)
	}
	if *limit < 1 || *limit > 500 {
		return usagef("--limit must be between 1 and 500, got %d", *limit)
	}
	if err := checkKey(c); err != nil {
		return err
	}
	list, err := c.List(ctx, client.ListParams{Status: *status, Engine: *eng, Limit: *limit})
	if err != nil {
		return explain(ctx, c, err)
	}
	rows := withTTFT(ctx, c, list.Jobs)
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tENGINE\tAGE\tTOKENS\tTTFT")
	for _, r := range rows {
		tokens, ttft := "-", "-"
		if n, ok := outputTokens(r.Job); ok {
			tokens = strconv.Itoa(n)
		}
		if r.TTFTMillis != nil {
			ttft = roundDuration(time.Duration(*r.TTFTMillis) * time.Millisecond)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, r.Engine, age(now.Sub(r.CreatedAt)), tokens, ttft)
	}
	return tw.Flush()
}

// withTTFT adds each job's time to first token, read from its first chunk
// (a few requests at a time; a job without chunks has none).
func withTTFT(ctx context.Context, c *client.Client, jobs []jobsapi.Job) []jobRow {
	rows := make([]jobRow, len(jobs))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, j := range jobs {
		rows[i].Job = j
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if ms, ok := ttft(ctx, c, j.ID, j.CreatedAt); ok {
				rows[i].TTFTMillis = &ms
			}
		})
	}
	wg.Wait()
	return rows
}

func ttft(ctx context.Context, c *client.Client, id uuid.UUID, created time.Time) (int64, bool) {
	page, err := c.Chunks(ctx, id, client.ChunksParams{Offset: 0, Limit: 1})
	if err != nil || len(page.Chunks) == 0 {
		return 0, false
	}
	return page.Chunks[0].CreatedAt.Sub(created).Milliseconds(), true
}

// age is a duration the way a table wants it: 42s, 5m, 3h, 2d.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(max(int(d.Seconds()), 0)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h"
	default:
		return strconv.Itoa(int(d.Hours()/24)) + "d"
	}
}
