package store_test

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/store"
	"github.com/jobstream/jobstream/internal/testserver"
)

// TestServerPassword: jobstream_server's password is
// base64url(HMAC-SHA256(owner's password, "jobstream_server")): the same
// on every node given the same owner DSN, different for another owner
// password, and not the owner's password.
func TestServerPassword(t *testing.T) {
	t.Parallel()
	mac := hmac.New(sha256.New, []byte("owner secret"))
	mac.Write([]byte("jobstream_server"))
	want := base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	if got := store.ServerPassword("owner secret"); got != want {
		t.Errorf("ServerPassword = %q, want %q", got, want)
	}
	if store.ServerPassword("owner secret") != store.ServerPassword("owner secret") {
		t.Error("ServerPassword is not deterministic")
	}
	if store.ServerPassword("other secret") == want {
		t.Error("two owner passwords derive the same server password")
	}
}

// TestServerPasswordSet: an owner that is no superuser (a role with
// CREATEROLE, as on a managed server) sets jobstream_server's password; the
// server stores a SCRAM-SHA-256 secret that verifies the derived password,
// received as such (the function refuses a plaintext password, so none
// can reach the statement log through it).
func TestServerPasswordSet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := dbtest.Pool(t)
	owner := "jobstream_test_owner_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	for _, stmt := range []string{
		`CREATE ROLE ` + owner + ` LOGIN CREATEROLE`,
		// In its own database the owner owns the function.
		`GRANT EXECUTE ON FUNCTION jobstream_server_password(text) TO ` + owner,
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, stmt := range []string{`DROP OWNED BY ` + owner, `DROP ROLE ` + owner} {
			if _, err := admin.Exec(context.Background(), stmt); err != nil {
				t.Errorf("%s: %v", stmt, err)
			}
		}
	})
	// The password serve would derive from the test server's DSN, so that
	// servers of tests running meanwhile still log in where passwords are
	// checked; put back as it was where they are not.
	ownerPassword := mustParseConfig(t, dbtest.URL(t)).Password
	if ownerPassword == "" {
		ownerPassword = "owner secret"
		t.Cleanup(func() {
			if _, err := admin.Exec(context.Background(), `ALTER ROLE `+store.ServerRole+` PASSWORD NULL`); err != nil {
				t.Error(err)
			}
		})
	}
	password := store.ServerPassword(ownerPassword)
	asOwner := testserver.Pool(t, testserver.WithUser(dbtest.URL(t), owner, ""), 1)
	if err := store.ServerPasswordSet(ctx, asOwner, password); err != nil {
		t.Fatalf("ServerPasswordSet as a CREATEROLE owner: %v", err)
	}

	var secret string
	if err := admin.QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, store.ServerRole).Scan(&secret); err != nil {
		t.Fatal(err)
	}
	if !scramVerifies(t, secret, password) {
		t.Errorf("stored secret %q does not verify the derived password", secret)
	}
	if _, err := asOwner.Exec(ctx, `SELECT jobstream_server_password('plaintext')`); err == nil ||
		!strings.Contains(err.Error(), "SCRAM-SHA-256") {
		t.Errorf("a plaintext password was accepted (%v)", err)
	}
}

// scramVerifies checks a PostgreSQL SCRAM-SHA-256 secret
// (SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>) against
// password (RFC 5802).
func scramVerifies(t *testing.T, secret, password string) bool {
	t.Helper()
	rest, ok := strings.CutPrefix(secret, "SCRAM-SHA-256$")
	if !ok {
		return false
	}
	params, keys, _ := strings.Cut(rest, "$")
	iterText, saltText, _ := strings.Cut(params, ":")
	storedText, serverText, _ := strings.Cut(keys, ":")
	iterations, err := strconv.Atoi(iterText)
	if err != nil {
		return false
	}
	b64 := base64.StdEncoding.DecodeString
	salt, err1 := b64(saltText)
	stored, err2 := b64(storedText)
	server, err3 := b64(serverText)
	if err1 != nil || err2 != nil || err3 != nil {
		return false
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(msg string) []byte { h := hmac.New(sha256.New, salted); h.Write([]byte(msg)); return h.Sum(nil) }
	clientKey := sha256.Sum256(mac("Client Key"))
	return hmac.Equal(clientKey[:], stored) && hmac.Equal(mac("Server Key"), server)
}

func mustParseConfig(t *testing.T, dsn string) *pgx.ConnConfig {
	t.Helper()
	c, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
