package store

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// Actor is who causes a change, as the audit trail (job_events) records it.
type Actor struct {
	// Name is "api_key:<id>", "tenant:<t>" (an anonymous dev-mode client),
	// "worker:<owner>", "rescuer:<owner>" or "retention".
	Name string
	// Via says how a request came, when that matters to an auditor: for
	// cancel requests, "StopPixelExecution" (the SEMOSS API) or empty (the
	// native API).
	Via string
	// Request is the request that acts, as "METHOD path" (the path as
	// sent, escaped): recorded with the client's reads ('accessed' events,
	// detail.request), so an auditor sees which surface read the job.
	Request string
}

type actorKey struct{}

// WithActor returns ctx carrying a. The HTTP layer sets it once per
// request, from the authenticated key; every audited change the store
// makes under ctx records it.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the Actor ctx carries (the zero Actor if none).
func ActorFrom(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	return a
}

// KeyActor is the actor name of a request made with an API key, or, with
// no key (dev mode), of its tenant.
func KeyActor(keyID *uuid.UUID, tenant string) string {
	if keyID != nil {
		return "api_key:" + keyID.String()
	}
	return "tenant:" + tenant
}

// setAudit names the actor, and the event when not empty, that the
// jobs_audit trigger records for the rest of tx (transaction-local
// settings jobstream.actor and jobstream.event). An empty actor leaves the
// trigger's own attribution (the lease owner, the job's API key).
func (s *Store) setAudit(ctx context.Context, tx pgx.Tx, actor, event string) error {
	return s.q.AuditSet(ctx, tx, dbsqlc.AuditSetParams{Actor: actor, Event: event})
}
