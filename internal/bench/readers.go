package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// reader follows one job to its end, recording what it receives in tr.
type reader struct {
	hc       *http.Client
	base     string
	job      uuid.UUID
	tr       *tracker
	from, to int64 // latency window, Unix µs
	requests *atomic.Int64
	tokens   *atomic.Int64 // content chunks received (all readers)
	// finalOffset is the job's chunk count as the server reported it at
	// the end (SSE end event, last long-poll page).
	finalOffset int
}

// chunkJSON is the part of a chunk the bench looks at.
type chunkJSON struct {
	Seq  *int `json:"seq"`
	Data struct {
		EmittedAtUS int64  `json:"emitted_at_us"`
		Content     string `json:"content"`
	} `json:"data"`
}

func (r *reader) record(c *chunkJSON, now int64) {
	if c.Seq != nil {
		r.tr.Seq(*c.Seq)
	} else {
		r.tr.Stamp(c.Data.EmittedAtUS, c.Data.Content)
	}
	if c.Data.EmittedAtUS > 0 {
		r.tokens.Add(1)
		r.tr.Latency(c.Data.EmittedAtUS, now, r.from, r.to)
	}
}

// sse follows GET /v1/jobs/{id}/events, resuming with Last-Event-ID if the
// connection drops.
func (r *reader) sse(ctx context.Context) error {
	last := -1
	for attempt := 0; ; attempt++ {
		done, err := r.sseOnce(ctx, &last)
		if done || ctx.Err() != nil {
			return err
		}
		if attempt >= 5 {
			return fmt.Errorf("sse job %s: %w", r.job, err)
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond) // reconnect backoff
	}
}

func (r *reader) sseOnce(ctx context.Context, last *int) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/v1/jobs/"+r.job.String()+"/events", nil)
	if err != nil {
		return true, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *last >= 0 {
		req.Header.Set("Last-Event-ID", strconv.Itoa(*last))
	}
	r.requests.Add(1)
	resp, err := r.hc.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode < 500, fmt.Errorf("GET events: %s: %s", resp.Status, b)
	}
	br := bufio.NewReaderSize(resp.Body, 32<<10)
	var event string
	var data []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if err == bufio.ErrBufferFull {
				return true, fmt.Errorf("sse line too long")
			}
			return false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			switch event {
			case "chunk":
				now := time.Now().UnixMicro()
				var c chunkJSON
				if !fastChunk(data, &c) {
					if err := json.Unmarshal(data, &c); err != nil {
						return true, fmt.Errorf("decode chunk event: %w", err)
					}
				}
				r.record(&c, now)
				if c.Seq != nil {
					*last = *c.Seq
				}
			case "end":
				var end struct {
					NextOffset int `json:"next_offset"`
				}
				if err := json.Unmarshal(data, &end); err != nil {
					return true, fmt.Errorf("decode end event: %w", err)
				}
				r.finalOffset = end.NextOffset
				return true, nil
			case "error":
				return false, fmt.Errorf("server: %s", data)
			}
			event, data = "", data[:0]
		case bytes.HasPrefix(line, []byte("event: ")):
			event = string(line[len("event: "):])
		case bytes.HasPrefix(line, []byte("data: ")):
			data = append(data[:0], line[len("data: "):]...)
		}
	}
}

// longPoll repeats GET /v1/jobs/{id}/chunks?offset=N&wait=..&min_wait=..
// until the job has ended and everything was read.
func (r *reader) longPoll(ctx context.Context, wait, linger time.Duration) error {
	offset := 0
	q := url.Values{}
	q.Set("wait", strconv.FormatFloat(wait.Seconds(), 'f', -1, 64))
	if linger > 0 {
		q.Set("min_wait", strconv.FormatFloat(linger.Seconds(), 'f', -1, 64))
	}
	errors := 0
	for {
		q.Set("offset", strconv.Itoa(offset))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/v1/jobs/"+r.job.String()+"/chunks?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		r.requests.Add(1)
		var page struct {
			Status     string      `json:"status"`
			Chunks     []chunkJSON `json:"chunks"`
			NextOffset int         `json:"next_offset"`
			More       bool        `json:"more"`
		}
		err = doJSON(r.hc, req, &page)
		now := time.Now().UnixMicro()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors++; errors > 5 {
				return fmt.Errorf("long-poll job %s: %w", r.job, err)
			}
			continue
		}
		errors = 0
		for i := range page.Chunks {
			r.record(&page.Chunks[i], now)
		}
		offset = page.NextOffset
		if terminal(page.Status) && !page.More {
			r.finalOffset = offset
			return nil
		}
	}
}

// semoss polls POST /Monolith/api/engine/pixelJobStreaming with jobId only
// (no offset: the server keeps the cursor) every interval, like semoss-ui.
func (r *reader) semoss(ctx context.Context, interval time.Duration) error {
	// Each poller is its own SEMOSS session (the server keeps one cursor
	// per job and session): GET /config hands out the session cookie.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/Monolith/api/config", nil)
	if err != nil {
		return err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET /Monolith/api/config: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	cookies := resp.Cookies()
	if len(cookies) == 0 {
		return fmt.Errorf("GET /Monolith/api/config: no session cookie (%s)", resp.Status)
	}
	form := url.Values{"jobId": {r.job.String()}}.Encode()
	t := time.NewTicker(interval)
	defer t.Stop()
	errors := 0
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/Monolith/api/engine/pixelJobStreaming", strings.NewReader(form))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range cookies {
			req.AddCookie(c)
		}
		r.requests.Add(1)
		var resp struct {
			Status  string      `json:"status"`
			Message []chunkJSON `json:"message"`
		}
		err = doJSON(r.hc, req, &resp)
		now := time.Now().UnixMicro()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors++; errors > 5 {
				return fmt.Errorf("pixelJobStreaming job %s: %w", r.job, err)
			}
		} else {
			errors = 0
			for i := range resp.Message {
				r.record(&resp.Message[i], now)
			}
			switch resp.Status {
			case "ProgressComplete", "Complete", "Error", "Canceled":
				return nil
			case "UnknownJob":
				return fmt.Errorf("pixelJobStreaming job %s: UnknownJob", r.job)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func terminal(status string) bool {
	return status == "completed" || status == "failed" || status == "cancelled"
}

func doJSON(hc *http.Client, req *http.Request, out any) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, bytes.TrimSpace(b))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// fastChunk reads seq and emitted_at_us out of a chunk event without a JSON
// decoder (the load generator parses tens of thousands of events a second
// on the machine it measures). It reports false when the event does not
// have the expected shape; the caller then decodes it properly.
func fastChunk(data []byte, c *chunkJSON) bool {
	if !bytes.HasPrefix(data, []byte(`{"seq":`)) {
		return false
	}
	seq, rest, ok := leadingInt(data[len(`{"seq":`):])
	if !ok || len(rest) == 0 || rest[0] != ',' {
		return false
	}
	c.Seq = &seq
	if i := bytes.Index(rest, []byte(`"emitted_at_us":`)); i >= 0 { // compact (json.Marshal) or jsonb's ": "
		v, _, ok := leadingInt(rest[i+len(`"emitted_at_us":`):])
		if !ok {
			return false
		}
		c.Data.EmittedAtUS = int64(v)
	}
	return true
}

func leadingInt(b []byte) (int, []byte, bool) {
	b = bytes.TrimLeft(b, " ")
	n, i := 0, 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' && i < 18 {
		n = n*10 + int(b[i]-'0')
		i++
	}
	return n, b[i:], i > 0
}
