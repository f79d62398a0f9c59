package worker_test

import (
	"testing"
	"time"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/engine"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/worker"
)

// TestHeartbeatTimeoutFollowsConfig: a heartbeat is bounded by half its
// interval, at least 1 s, and at most the store's configured hot
// operation timeout, not the default one (issue 19).
func TestHeartbeatTimeoutFollowsConfig(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	for _, tc := range []struct {
		name          string
		hot, interval time.Duration
		want          time.Duration
	}{
		{"LongerHot", 30 * time.Second, 2 * time.Minute, 30 * time.Second},
		{"ShorterHot", 3 * time.Second, time.Minute, 3 * time.Second},
		{"HalfInterval", 30 * time.Second, 20 * time.Second, 10 * time.Second},
		{"AtLeastASecond", 30 * time.Second, time.Second, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := store.NewWithConfig(pool, store.Config{HotOperationTimeout: tc.hot})
			w := worker.New(s, engine.NewRegistry(), worker.Config{HeartbeatInterval: tc.interval, LeaseTTL: 3 * tc.interval})
			if got := worker.HeartbeatTimeout(w); got != tc.want {
				t.Fatalf("heartbeat timeout %s, want %s", got, tc.want)
			}
		})
	}
}
