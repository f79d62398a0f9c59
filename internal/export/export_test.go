package export_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/export"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// offlineCheck is what an auditor writes from the README alone, with
// nothing from jobstream: it recomputes every job's chain in an export and
// returns the problems found.
func offlineCheck(r io.Reader) ([]string, error) {
	type state struct {
		h      []byte
		n      int
		count  *int
		final  *string
		status string
	}
	jobs := map[string]*state{}
	var order []string
	var problems []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, err
		}
		switch line["type"] {
		case "job":
			id := uuid.MustParse(line["id"].(string))
			seed := sha256.Sum256(id[:])
			if line["chain_version"].(float64) == 2 {
				rh, _ := hex.DecodeString(line["request_sha256"].(string))
				seed = sha256.Sum256(append(append(append(append(id[:], rh...), line["tenant"].(string)...), 0), line["engine"].(string)...))
			}
			st := &state{h: seed[:], status: line["status"].(string)}
			if c, ok := line["chunk_count"].(float64); ok {
				n := int(c)
				st.count = &n
			}
			if f, ok := line["final_hash"].(string); ok {
				st.final = &f
			}
			jobs[id.String()] = st
			order = append(order, id.String())
		case "chunk":
			id := line["job_id"].(string)
			st := jobs[id]
			seq := int(line["seq"].(float64))
			if seq != st.n {
				problems = append(problems, fmt.Sprintf("%s: chunk %d missing", id, st.n))
			}
			in := append([]byte{}, st.h...)
			in = append(in, strconv.Itoa(seq)+"\x00"+line["stream_type"].(string)+"\x00"+line["data"].(string)...)
			sum := sha256.Sum256(in)
			st.h = sum[:]
			if hex.EncodeToString(st.h) != line["hash"] {
				problems = append(problems, fmt.Sprintf("%s: chunk %d hash mismatch", id, seq))
			}
			st.n++
		}
	}
	for _, id := range order {
		st := jobs[id]
		if st.status == "completed" || st.status == "failed" || st.status == "cancelled" {
			if st.count == nil || *st.count != st.n {
				problems = append(problems, fmt.Sprintf("%s: %d chunks, chunk_count %v", id, st.n, st.count))
			}
			if st.final == nil || *st.final != hex.EncodeToString(st.h) {
				problems = append(problems, id+": final hash mismatch")
			}
		}
	}
	return problems, sc.Err()
}

// TestExportVerifiesOffline: an export of finished and running jobs checks
// out with a few lines of code that use only the export and SHA-256, and
// an edited export does not.
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
	problems, err := offlineCheck(bytes.NewReader(buf.Bytes()))
	if err != nil || len(problems) > 0 {
		t.Fatalf("offline check of an untouched export: %v, %v\n%s", problems, err, buf.String())
	}

	// Edit the content of one chunk, in the export: caught.
	edited := strings.Replace(buf.String(), `héllo`, `hello`, 1)
	if problems, _ := offlineCheck(strings.NewReader(edited)); len(problems) == 0 {
		t.Error("offline check passed an edited export")
	}
	// Drop the finish chunk's line: caught by the count.
	var kept []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if !strings.Contains(l, `finish_reason\":\"stop`) {
			kept = append(kept, l)
		}
	}
	if problems, _ := offlineCheck(strings.NewReader(strings.Join(kept, "\n"))); len(problems) == 0 {
		t.Error("offline check passed an export missing its finish chunk")
	}
}
