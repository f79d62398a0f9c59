package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// HandBack returns a job that owner holds under l to the queue, because the
// worker is shutting down before the job wrote any chunk: another node then
// runs it from the start, and the hand-back does not count against the
// job's attempts. It wakes idle workers in the same transaction. It returns
// ErrLeaseLost when the lease is gone or the job has chunks (it must then
// be failed, not replayed).
func (s *Store) HandBack(ctx context.Context, owner string, l Lease) error {
	ctx, cancel := s.hot(ctx)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.setAudit(ctx, tx, "", "handed_back"); err != nil {
			return err
		}
		n, err := s.q.JobHandBack(ctx, tx, dbsqlc.JobHandBackParams{ID: l.JobID, Attempt: int32(l.Attempt), Owner: owner})
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrLeaseLost
		}
		return s.q.Notify(ctx, tx, dbsqlc.NotifyParams{Channel: ChannelJobs, Payload: "handed-back"})
	})
	if errors.Is(err, ErrLeaseLost) {
		return ErrLeaseLost
	}
	if err != nil {
		return fmt.Errorf("hand back job %s: %w", l.JobID, err)
	}
	return nil
}

// Unavailable reports whether err means the database could not be reached
// or dropped the connection (it is restarting, say), as opposed to a
// problem with the query: the caller may answer "retry later" (503) rather
// than "internal error".
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01-57P03: admin shutdown,
		// crash shutdown, cannot connect now.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err)
}
