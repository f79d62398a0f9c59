package store

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jobstream/jobstream/internal/store/dbsqlc"
)

// Analyst is a read-only login role confined to one tenant's rows.
type Analyst struct {
	Role      string
	Tenant    string
	CreatedAt time.Time
}

// roleName is what analyst role names may be: PostgreSQL identifiers that
// need no quoting, so that they read the same in a DSN and in psql.
var roleName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// AnalystCreate creates an analyst role for tenant and returns its
// generated password. role defaults to analyst_<8 random hex digits>.
// Creating roles needs a database role with CREATEROLE (the one that
// migrated the database). ErrConflict: the role exists.
func (s *Store) AnalystCreate(ctx context.Context, role, tenant string) (Analyst, string, error) {
	if role == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		role = "analyst_" + hex.EncodeToString(b[:])
	}
	if !roleName.MatchString(role) {
		return Analyst{}, "", fmt.Errorf("role name %q: want lowercase letters, digits and _, at most 63, not starting with a digit", role)
	}
	if tenant == "" {
		return Analyst{}, "", errors.New("an analyst needs a tenant")
	}
	var pw [24]byte
	_, _ = rand.Read(pw[:])
	password := base64.RawURLEncoding.EncodeToString(pw[:])
	err := s.q.AnalystCreate(ctx, s.pool, dbsqlc.AnalystCreateParams{Role: role, Tenant: tenant, Secret: scramSecret(password)})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42710" || pgErr.Code == codeUniqueViolation) {
		return Analyst{}, "", fmt.Errorf("role %s: %w", role, ErrConflict)
	}
	if err != nil {
		return Analyst{}, "", fmt.Errorf("create analyst: %w", err)
	}
	return Analyst{Role: role, Tenant: tenant, CreatedAt: time.Now()}, password, nil
}

// AnalystDrop drops an analyst role; ErrNotFound if role is not an analyst.
func (s *Store) AnalystDrop(ctx context.Context, role string) error {
	ok, err := s.q.AnalystDrop(ctx, s.pool, role)
	if err != nil {
		return fmt.Errorf("drop analyst: %w", err)
	}
	if !ok {
		return ErrNotFound
	}
	return nil
}

// AnalystList returns every analyst.
func (s *Store) AnalystList(ctx context.Context) ([]Analyst, error) {
	rows, err := s.q.AnalystList(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("list analysts: %w", err)
	}
	out := make([]Analyst, len(rows))
	for i, r := range rows {
		out[i] = Analyst{Role: r.Role, Tenant: r.Tenant, CreatedAt: r.CreatedAt}
	}
	return out, nil
}

// scramIterations is PostgreSQL's own default (scram_iterations).
const scramIterations = 4096

// scramSecret is the SCRAM-SHA-256 secret PostgreSQL stores for password
// (RFC 5802 and 7677; the format of PostgreSQL's scram_build_secret):
// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>. Given as the
// role's PASSWORD, it is stored as is, so the password itself never
// reaches the server. password is ASCII, which SASLprep leaves unchanged.
func scramSecret(password string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	return scramSecretSalt(password, salt, scramIterations)
}

func scramSecretSalt(password string, salt []byte, iterations int) string {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		panic(err) // only for parameters outside FIPS limits, which these are not
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	server := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(server))
}
