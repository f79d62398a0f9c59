package store_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
)

func TestRegisterTypes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := store.AfterConnect(ctx, conn); err != nil {
		t.Fatal(err)
	}
	a, b := uuid.Must(uuid.NewV7()), uuid.New()

	t.Run("ScalarBothWays", func(t *testing.T) {
		var got uuid.UUID
		var text string
		if err := conn.QueryRow(ctx, "SELECT $1::uuid, $1::uuid::text", a).Scan(&got, &text); err != nil {
			t.Fatal(err)
		}
		if got != a || text != a.String() {
			t.Fatalf("got %s (%s), want %s", got, text, a)
		}
	})
	t.Run("Array", func(t *testing.T) {
		var got []uuid.UUID
		if err := conn.QueryRow(ctx, "SELECT array_agg(x ORDER BY o) FROM unnest($1::uuid[]) WITH ORDINALITY AS u(x, o)", []uuid.UUID{a, b}).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0] != a || got[1] != b {
			t.Fatalf("got %v, want [%s %s]", got, a, b)
		}
	})
	t.Run("Nullable", func(t *testing.T) {
		var got *uuid.UUID
		if err := conn.QueryRow(ctx, "SELECT NULL::uuid").Scan(&got); err != nil || got != nil {
			t.Fatalf("NULL: got %v, %v", got, err)
		}
		if err := conn.QueryRow(ctx, "SELECT $1::uuid", &b).Scan(&got); err != nil || got == nil || *got != b {
			t.Fatalf("pointer: got %v, %v", got, err)
		}
		var plain uuid.UUID
		if err := conn.QueryRow(ctx, "SELECT NULL::uuid").Scan(&plain); err == nil {
			t.Fatal("NULL into uuid.UUID: no error")
		}
	})
	t.Run("TextFormat", func(t *testing.T) {
		// Simple protocol: parameters and results travel as text.
		var got uuid.UUID
		if err := conn.QueryRow(ctx, "SELECT $1::uuid", pgx.QueryExecModeSimpleProtocol, a).Scan(&got); err != nil || got != a {
			t.Fatalf("got %s, %v; want %s", got, err, a)
		}
	})
}
