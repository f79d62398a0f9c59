// Package migrations embeds jobstream's goose SQL migrations, so the binary
// can migrate its database without the source tree.
package migrations

import "embed"

// FS holds the *.sql migrations.
//
//go:embed *.sql
var FS embed.FS
