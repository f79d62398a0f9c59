package auth

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/jobstream/jobstream/internal/httpapi"
	"github.com/jobstream/jobstream/internal/store"
)

// ErrRevoked is the cause of a Guard context ended because its key was
// revoked. It is an httpapi.ErrUnauthenticated.
var ErrRevoked = unauthenticated("the API key was revoked")

// revocationWindow is how far back WatchRevocations looks beyond the time
// since its last successful poll, so that a revocation committed late, or
// during an outage, is still seen.
const revocationWindow = time.Minute

// WatchRevocations ends the requests of revoked keys until ctx is done:
// every RevocationPoll it asks which keys were revoked lately, cancels the
// contexts Guard gave their requests (SSE streams, long-polls, waits for a
// job) and forgets cached lookups of them, so that a revoked key's open
// streams end within the same CacheTTL in which its new requests are
// refused. A failed poll is retried at the next tick, looking further
// back. It returns ctx's error.
func (a *Authenticator) WatchRevocations(ctx context.Context) error {
	t := time.NewTicker(a.cfg.RevocationPoll)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, a.cfg.CacheTTL)
		revoked, err := a.store.KeysRevokedWithin(pctx, time.Since(last)+revocationWindow)
		cancel()
		if err != nil {
			continue // the database is away; look further back next time
		}
		last = start
		a.revoke(revoked, start)
	}
}

// revoke forgets the cached lookups of keys found revoked, then ends their
// requests: in that order, so that a client whose stream just ended is
// refused when it comes back, never let in by the cache once more.
func (a *Authenticator) revoke(keys []store.RevokedKey, now time.Time) {
	fresh, stop := a.guards.revoke(keys, now)
	for _, k := range fresh {
		a.keys.drop(k.AccessKey)
		a.sessions.dropIf(func(s store.Session) bool { return s.APIKeyID != nil && *s.APIKeyID == k.ID })
	}
	for _, gd := range stop {
		gd.cancel(ErrRevoked)
	}
}

// Guard returns a context of ctx that WatchRevocations cancels, with cause
// ErrRevoked, once p's key is revoked (at once if it already was). Call
// the CancelFunc when the request ends. Requests without a key (dev mode)
// are never cancelled.
func (a *Authenticator) Guard(ctx context.Context, p httpapi.Principal) (context.Context, context.CancelFunc) {
	if p.KeyID == nil {
		return context.WithCancel(ctx)
	}
	return a.guards.add(ctx, *p.KeyID)
}

// guards are the running requests of each key.
type guards struct {
	mu      sync.Mutex
	running map[uuid.UUID]map[*guard]struct{}
	// revoked is when each key was first seen revoked; kept for
	// revocationWindow, past which no cached lookup of it is left.
	revoked map[uuid.UUID]time.Time
}

type guard struct{ cancel context.CancelCauseFunc }

func (g *guards) init() {
	g.running = map[uuid.UUID]map[*guard]struct{}{}
	g.revoked = map[uuid.UUID]time.Time{}
}

func (g *guards) add(ctx context.Context, key uuid.UUID) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	gd := &guard{cancel: cancel}
	g.mu.Lock()
	if _, ok := g.revoked[key]; ok {
		g.mu.Unlock()
		cancel(ErrRevoked)
		return ctx, func() {}
	}
	set := g.running[key]
	if set == nil {
		set = map[*guard]struct{}{}
		g.running[key] = set
	}
	set[gd] = struct{}{}
	g.mu.Unlock()
	return ctx, func() {
		g.mu.Lock()
		delete(set, gd)
		if len(set) == 0 && g.running[key] != nil && len(g.running[key]) == 0 {
			delete(g.running, key)
		}
		g.mu.Unlock()
		cancel(context.Canceled)
	}
}

// revoke marks keys revoked (a Guard of them from now on ends at once) and
// returns those not seen revoked before and the guards of their running
// requests, for the caller to cancel.
func (g *guards) revoke(keys []store.RevokedKey, now time.Time) (fresh []store.RevokedKey, stop []*guard) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, at := range g.revoked {
		if now.Sub(at) > 2*revocationWindow {
			delete(g.revoked, id)
		}
	}
	for _, k := range keys {
		if _, ok := g.revoked[k.ID]; !ok {
			fresh = append(fresh, k)
		}
		g.revoked[k.ID] = now
		for gd := range g.running[k.ID] {
			stop = append(stop, gd)
		}
		delete(g.running, k.ID)
	}
	return fresh, stop
}
