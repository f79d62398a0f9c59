package stream_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/stream"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestReaderNeverLosesAWakeUp streams many jobs' chunks, one commit each,
// to readers that call Read again after every answer (as the SSE handler
// does), with the recheck timer out of the way: a lost wake-up leaves a
// reader stuck until the test's deadline.
func TestReaderNeverLosesAWakeUp(t *testing.T) {
	t.Parallel()
	b := setupCoalesce(t, stream.Config{})
	const jobs, chunks = 20, 60
	ctx, cancel := context.WithTimeout(context.Background(), testserver.Timeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2*jobs)
	for range jobs {
		l := testserver.RunningJob(t, b.store.Pool(), b.tenant, owner)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for seq := range chunks {
				if _, err := b.store.WriteBatch(ctx, owner, []store.NewChunk{testserver.Content(l, seq, "x")}, nil); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			from := 0
			for from < chunks {
				snap, err := b.reader.Read(ctx, stream.Params{Tenant: b.tenant, JobID: l.JobID, From: from, Limit: 100, Wait: time.Minute})
				if err != nil {
					errs <- fmt.Errorf("job %s: read from %d: %w", l.JobID, from, err)
					return
				}
				for _, c := range snap.Chunks {
					if c.Seq != from {
						errs <- fmt.Errorf("job %s: got seq %d, want %d", l.JobID, c.Seq, from)
						return
					}
					from++
				}
			}
		}()
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			select {
			case <-b.waiting:
			case <-b.skipped:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	cancel()
	<-drained
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
