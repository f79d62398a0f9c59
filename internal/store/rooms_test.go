package store_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
)

func TestRecentRoomHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	s := store.New(pool)
	tenant := "t-" + uuid.NewString()
	room := "room-" + uuid.NewString()

	// Five finished turns, answered "answer 0".."answer 4".
	var ids []uuid.UUID
	for i := range 5 {
		job := mustSubmit(t, s, store.SubmitParams{Tenant: tenant, RoomID: room, Request: store.Request{Command: "question " + string(rune('0'+i))}})
		finishQueued(t, pool, job.ID, "answer "+string(rune('0'+i)))
		ids = append(ids, job.ID)
	}
	// Not history: a running turn, another room, another tenant.
	mustSubmit(t, s, store.SubmitParams{Tenant: tenant, RoomID: room})
	other := mustSubmit(t, s, store.SubmitParams{Tenant: tenant, RoomID: "elsewhere"})
	finishQueued(t, pool, other.ID, "no")
	foreign := mustSubmit(t, s, store.SubmitParams{Tenant: "other", RoomID: room})
	finishQueued(t, pool, foreign.ID, "no")
	current := mustSubmit(t, s, store.SubmitParams{Tenant: tenant, RoomID: room})

	turns, err := s.RecentRoomHistory(ctx, tenant, room, current.ID, 3, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tr := range turns {
		got = append(got, tr.Request.Command+" -> "+tr.Content)
	}
	want := []string{"question 2 -> answer 2", "question 3 -> answer 3", "question 4 -> answer 4"}
	if !slices.Equal(got, want) {
		t.Fatalf("history %q, want the latest three turns oldest first %q", got, want)
	}
	// Only turns before the given job.
	turns, _ = s.RecentRoomHistory(ctx, tenant, room, ids[2], 10, 1<<20)
	if len(turns) != 2 || turns[1].JobID != ids[1] {
		t.Fatalf("history before turn 2: %d turns", len(turns))
	}
	// A byte budget leaves the oldest turns out: each turn here is 18
	// bytes of command and output ("question n" + "answer n").
	turns, _ = s.RecentRoomHistory(ctx, tenant, room, current.ID, 10, 53)
	if len(turns) != 2 || turns[0].JobID != ids[3] || turns[1].JobID != ids[4] {
		t.Fatalf("history within 53 bytes: %d turns, want the latest two", len(turns))
	}
	if turns, _ = s.RecentRoomHistory(ctx, tenant, room, current.ID, 10, 17); len(turns) != 0 {
		t.Fatalf("history within 17 bytes: %d turns, want none", len(turns))
	}
}

// finishQueued completes a queued job with one content chunk, as a worker
// would have.
func finishQueued(t *testing.T, pool *pgxpool.Pool, id uuid.UUID, text string) {
	t.Helper()
	ctx := context.Background()
	// The chunk first, with its chain hash: the terminal update seals the
	// job with the chunks stored before it.
	_, err := pool.Exec(ctx, `
		INSERT INTO job_chunks (job_id, seq, stream_type, data, hash)
		SELECT $1, 0, 'content', d, job_chunk_hash((SELECT chain_seed FROM jobs WHERE id = $1), 0, 'content', d::text)
		FROM json_build_object('content', $2::text) d`, id, text)
	if err == nil {
		_, err = pool.Exec(ctx, `
			UPDATE jobs SET status = 'completed', finish_reason = 'stop', started_at = now(), finished_at = now()
			WHERE id = $1`, id)
	}
	if err != nil {
		t.Fatalf("finish job: %v", err)
	}
}
