package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jobstream/jobstream/internal/jobsapi"
)

const askAbout = `Submit a prompt as a job and print the answer as it streams in: the job id on
stderr first, then the text as it arrives (thinking dimmed on a terminal), tool
calls pretty-printed, and how the job ended. A spinner shows on stderr until the
first token when stderr is a terminal. --json prints the raw chunks instead, one
JSON object per line.

Control characters in what the model or server sent, except newline and tab,
are shown escaped so that they cannot rewrite the terminal: C0 controls and DEL
as \xNN (ESC as \x1b, CR as \x0d, BEL as \x07), C1 controls as \u00NN (\u009b),
bytes of invalid UTF-8 as \xNN. --json prints the chunks as the server sent them.

Ctrl-C cancels the job (a second later) and shows how it ended; a second Ctrl-C
exits at once and, within that second, leaves the job running: 'jobstream tail
JOB_ID' follows it again.

The server is --url (env JOBSTREAM_URL, default http://localhost:8080);
credentials come from JOBSTREAM_ACCESS_KEY and JOBSTREAM_SECRET_KEY when the
server needs them.
--param k=v sets a request param; v is parsed as JSON when it is valid JSON
(numbers, true, [..], {..}) and taken as a string otherwise, e.g.
  jobstream ask "hello" --param sim_tokens_per_second=0 --param temperature=0.2`

// paramFlags collects repeated --param k=v flags.
type paramFlags map[string]json.RawMessage

func (p paramFlags) String() string { return "" }

func (p paramFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want k=v, got %q", s)
	}
	if json.Valid([]byte(v)) {
		p[k] = json.RawMessage(v)
	} else {
		b, _ := json.Marshal(v)
		p[k] = b
	}
	return nil
}

// cancelDelay is how long a Ctrl-C waits for a second one (detach: leave
// the job running) before it cancels the job.
const cancelDelay = time.Second

func cmdAsk(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "ask", `"prompt" [flags]`, askAbout)
	c := clientFlags(e, fs)
	eng := fs.String("engine", "sim", "engine id (jobstream engines --url URL lists a server's)")
	room := fs.String("room", "", "room (conversation) id")
	history := fs.Bool("history", false, "send the room's earlier turns as history")
	asJSON := fs.Bool("json", false, "print the raw chunks, one JSON object per line")
	params := paramFlags{}
	fs.Var(params, "param", "request param k=v (repeatable)")
	pos, err := parse(e, fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) != 1 || strings.TrimSpace(pos[0]) == "" {
		return usagef(`ask needs exactly one prompt argument, e.g. jobstream ask "write me a paragraph about soccer"`)
	}
	if err := checkKey(c); err != nil {
		return err
	}
	job, err := c.Submit(ctx, jobsapi.CreateJobRequest{Engine: *eng, Command: pos[0], Params: params, RoomID: *room, UseHistory: *history})
	if err != nil {
		return explain(ctx, c, err)
	}
	fmt.Fprintf(e.stderr, "job %s\n", job.ID)

	// Ctrl-C cancels the job after cancelDelay and keeps following, to
	// show how it ends; a second one (or SIGTERM) exits at once and, within
	// cancelDelay, leaves the job running.
	followCtx, detach := context.WithCancel(ctx)
	defer detach()
	detached := make(chan struct{})
	go func() {
		var cancelAt <-chan time.Time
		for {
			select {
			case sig := <-e.interrupts:
				if cancelAt == nil && sig == os.Interrupt {
					fmt.Fprintf(e.stderr, "\ncancelling job %s (Ctrl-C again to leave it running and exit)\n", job.ID)
					t := time.NewTimer(cancelDelay)
					defer t.Stop()
					cancelAt = t.C
					continue
				}
				close(detached)
				detach()
				return
			case <-cancelAt:
				go func() {
					if _, err := c.Cancel(followCtx, job.ID); err != nil && followCtx.Err() == nil {
						fmt.Fprintln(e.stderr, "cancel:", visible(err.Error())) // the server's words
					}
				}()
			case <-followCtx.Done():
				return
			}
		}
	}()

	spin := startSpinner(e.stderr, "waiting for the first token")
	o := &output{w: e.stdout, raw: *asJSON, dim: e.styled(e.stdout)}
	err = followWith(followCtx, e, c, job.ID, 0, o, spin.Stop)
	select {
	case <-detached:
		fmt.Fprintf(e.stderr, "\ndetached: job %s keeps running; follow it with: jobstream tail %s\n", job.ID, job.ID)
		return errSilent
	default:
	}
	if err != nil && !errors.Is(err, errSilent) {
		return explain(ctx, c, err)
	}
	return err
}
