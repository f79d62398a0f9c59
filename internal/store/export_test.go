package store

import "time"

// StoredText is pgJSON for the tests: the text a chunk's data is stored
// (and hashed) as.
var StoredText = pgJSON

// SetAccessClock sets the clock by which s's access cache judges the hour
// (NoteAccess).
func SetAccessClock(s *Store, now func() time.Time) { s.now = now }

// AccessCached is the number of (client, job) pairs s's access cache
// remembers.
func AccessCached(s *Store) int { return s.access.len() }
