package stream

import "time"

// SetNow replaces the Feed's clock. For tests.
func (f *Feed) SetNow(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}
