package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// RecentRoomHistory returns the latest max finished turns of a tenant's
// room submitted before job before, oldest first: when a room has more
// turns than fit, the oldest are the ones left out. So are the oldest turns
// once the newer ones hold more than maxBytes of command and output text
// (a lower bound of their size in a prompt, which the caller bounds
// exactly): a room of large turns is not read whole.
func (s *Store) RecentRoomHistory(ctx context.Context, tenant, room string, before uuid.UUID, max, maxBytes int) ([]Turn, error) {
	rows, err := s.q.RoomHistoryRecent(ctx, s.pool, dbsqlc.RoomHistoryRecentParams{
		Tenant: tenant, RoomID: &room, BeforeID: before, Max: int64(max), MaxBytes: int64(maxBytes),
	})
	if err != nil {
		return nil, fmt.Errorf("room %q history: %w", room, err)
	}
	turns := make([]Turn, 0, len(rows))
	for _, r := range rows {
		t := Turn{JobID: r.ID, Status: r.Status, Content: deref(r.Content), ToolCalls: r.ToolCalls}
		if err := json.Unmarshal(r.Request, &t.Request); err != nil {
			return nil, fmt.Errorf("decode job %s request: %w", r.ID, err)
		}
		turns = append(turns, t)
	}
	return turns, nil
}
