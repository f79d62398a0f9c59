package dbsqlc

// This file is written by hand, not generated: it queues generated
// statements on a pgx.Batch, so that the chunk writer sends the rest of
// its transaction in one round trip once its fence has answered. The
// arguments are passed in the generated methods' order.

import "github.com/jackc/pgx/v5"

// QueueChunkInsertMany queues ChunkInsertMany, or with idempotent
// ChunkInsertManyIdempotent.
func QueueChunkInsertMany(b *pgx.Batch, arg ChunkInsertManyParams, idempotent bool) {
	if idempotent {
		b.Queue(chunkInsertManyIdempotent, arg.JobIds, arg.Seqs, arg.StreamTypes, arg.Datas, arg.Hashes)
		return
	}
	b.Queue(chunkInsertMany, arg.JobIds, arg.Seqs, arg.StreamTypes, arg.Datas, arg.Hashes)
}

// QueueJobFinishMany queues JobFinishMany (its returned ids are not read).
func QueueJobFinishMany(b *pgx.Batch, arg JobFinishManyParams) {
	b.Queue(jobFinishMany, arg.Owner, arg.Ids, arg.Attempts, arg.Statuses, arg.FinishReasons, arg.Errors, arg.Usages)
}

// QueueNotifyMany queues NotifyMany.
func QueueNotifyMany(b *pgx.Batch, arg NotifyManyParams) {
	b.Queue(notifyMany, arg.Channel, arg.Payloads)
}
