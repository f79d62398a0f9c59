package export_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/export"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestExportVerifiesOffline: an export of finished and running jobs, with
// their audit events, checks out, and an edited export does not.
func TestExportVerifiesOffline(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	ctx := context.Background()
	tenant := "t-" + uuid.NewString()

	done := testserver.RunningJob(t, pool, tenant, "w1")
	texts := []string{"plain", "non-ASCII: héllo ☃ 😀", "a NUL: \x00!", `quotes " and \ backslash`, "<html>&"}
	var chunks []store.NewChunk
	for i, txt := range texts {
		chunks = append(chunks, testserver.Content(done, i, txt))
	}
	chunks = append(chunks, testserver.FinishChunk(done, len(texts), "stop"))
	fin := store.Finish{Lease: done, Status: store.StatusCompleted, FinishReason: "stop"}
	if _, err := s.WriteBatch(ctx, "w1", chunks, []store.Finish{fin}); err != nil {
		t.Fatal(err)
	}
	running := testserver.RunningJob(t, pool, tenant, "w1")
	if _, err := s.WriteBatch(ctx, "w1", []store.NewChunk{testserver.Content(running, 0, "so far")}, nil); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	n := 0
	err := s.Records(ctx, store.JobFilter{Tenant: tenant}, func(r store.Record) error {
		n++
		return export.Write(&buf, r)
	})
	if err != nil || n != 2 {
		t.Fatalf("Records = %d jobs, %v; want 2", n, err)
	}
	if !strings.Contains(buf.String(), `"type":"event"`) || !strings.Contains(buf.String(), `"event":"completed"`) {
		t.Errorf("export lacks the audit events:\n%s", buf.String())
	}
	var report strings.Builder
	if sum, err := export.Check(bytes.NewReader(buf.Bytes()), &report); err != nil || !sum.OK() || sum.Jobs != 2 {
		t.Fatalf("check of an untouched export: %+v, %v\n%s\n%s", sum, err, report.String(), buf.String())
	}

	// Edit the content of one chunk, in the export: caught.
	edited := strings.Replace(buf.String(), `héllo`, `hello`, 1)
	if sum, _ := export.Check(strings.NewReader(edited), io.Discard); sum.OK() || sum.Broken != 1 {
		t.Errorf("check of an edited export: %+v, want one job broken", sum)
	}
	// Drop the finish chunk's line: caught by the count.
	var kept []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if !strings.Contains(l, `finish_reason\":\"stop`) {
			kept = append(kept, l)
		}
	}
	if sum, _ := export.Check(strings.NewReader(strings.Join(kept, "\n")), io.Discard); sum.OK() || sum.Broken != 1 {
		t.Errorf("check of an export missing its finish chunk: %+v, want one job broken", sum)
	}
}
