-- Queries on analyst roles (migrations/00009_analysts.sql).

-- AnalystCreate creates a read-only LOGIN role mapped to @tenant; @secret
-- is its password as a SCRAM-SHA-256 secret.
-- name: AnalystCreate :exec
SELECT jobstream_analyst_create(@role::text, @tenant::text, @secret::text);

-- AnalystDrop drops an analyst's role and mapping; false when @role is not
-- an analyst.
-- name: AnalystDrop :one
SELECT jobstream_analyst_drop(@role::text)::boolean AS dropped;

-- name: AnalystList :many
SELECT * FROM analysts ORDER BY role;
