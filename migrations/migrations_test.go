package migrations_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/migrations"
)

func TestMigrations(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, db := openURL(t, testenv.EmptyDatabase(t))

	files := sqlFiles(t)
	n, err := migrations.Pending(ctx, db)
	require.NoError(t, err)
	require.Equal(t, len(files), n, "a fresh database has every migration pending")

	// Several replicas booting at once: the advisory lock serialises them and
	// every call succeeds.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = migrations.Up(ctx, db) })
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "concurrent Up #%d", i)
	}

	n, err = migrations.Pending(ctx, db)
	require.NoError(t, err)
	require.Zero(t, n)

	st, err := migrations.Status(ctx, db)
	require.NoError(t, err)
	require.Len(t, st, len(files))
	for i, s := range st {
		assert.Equal(t, files[i], s.Name)
		assert.Equal(t, int64(i+1), s.Version, "versions are contiguous from 1")
		assert.True(t, s.Applied, s.Name)
		assert.False(t, s.AppliedAt.IsZero(), s.Name)
	}

	// Up again is a no-op.
	before := versionRows(t, db)
	require.NoError(t, migrations.Up(ctx, db))
	require.Equal(t, before, versionRows(t, db))
	require.Equal(t, len(files)+1, before, "one goose row per file plus its initial row")

	t.Run("audit log is append-only", func(t *testing.T) { testAuditAppendOnly(t, db) })
	t.Run("constraints", func(t *testing.T) { testConstraints(t, db) })
}

func testAuditAppendOnly(t *testing.T, db *sql.DB) {
	ctx := context.Background()
	var id int64
	require.NoError(t, db.QueryRowContext(ctx, `
		INSERT INTO audit_log (actor_kind, action, entity_type, after)
		VALUES ('system', 'org.created', 'organization', '{"x":1}') RETURNING id`).Scan(&id))

	for _, q := range []string{
		`UPDATE audit_log SET action = 'tampered' WHERE id = $1`,
		`DELETE FROM audit_log WHERE id = $1`,
	} {
		_, err := db.ExecContext(ctx, q, id)
		requirePgError(t, err, "42501", "append-only")
	}
	_, err := db.ExecContext(ctx, `TRUNCATE audit_log`)
	requirePgError(t, err, "42501", "append-only")

	var action string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT action FROM audit_log WHERE id = $1`, id).Scan(&action))
	require.Equal(t, "org.created", action)
}

func testConstraints(t *testing.T, db *sql.DB) {
	ctx := context.Background()
	orgA, orgB := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	for i, org := range []uuid.UUID{orgA, orgB} {
		_, err := db.ExecContext(ctx, `INSERT INTO organizations (id, slug, name) VALUES ($1, $2, $3)`,
			org, []string{"acme", "globex"}[i], "Org")
		require.NoError(t, err)
	}
	_, err := db.ExecContext(ctx, `INSERT INTO organizations (id, slug, name) VALUES ($1, 'Upper', 'x')`, uuid.New())
	requirePgError(t, err, "23514", "organizations_slug_check")
	_, err = db.ExecContext(ctx, `INSERT INTO organizations (id, slug, name, allowed_ips) VALUES ($1, 'ips', 'x', '{10.0.0.0/8,::1}')`, uuid.New())
	require.NoError(t, err, "CIDRs and bare addresses are accepted")

	userA, userB := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	_, err = db.ExecContext(ctx, `INSERT INTO users (id, org_id, email, role) VALUES ($1, $2, 'Ann@Example.com', 'agent')`, userA, orgA)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO users (id, org_id, email, role) VALUES ($1, $2, 'ann@example.COM', 'customer_user')`, uuid.New(), orgA)
	requirePgError(t, err, "23505", "users_org_email_key")
	// The same address is fine in another organisation.
	_, err = db.ExecContext(ctx, `INSERT INTO users (id, org_id, email, role) VALUES ($1, $2, 'ann@example.com', 'customer_user')`, userB, orgB)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO users (id, org_id, email, role) VALUES ($1, $2, 'x@example.com', 'root')`, uuid.New(), orgA)
	requirePgError(t, err, "23514", "users_role_check")

	// Ticket numbers: the counter row exists from the organisation's insert.
	var n1, n2 int64
	require.NoError(t, db.QueryRowContext(ctx, `UPDATE ticket_counters SET last_number = last_number + 1 WHERE org_id = $1 RETURNING last_number`, orgA).Scan(&n1))
	require.NoError(t, db.QueryRowContext(ctx, `SELECT next_ticket_number($1)`, orgA).Scan(&n2))
	require.Equal(t, []int64{1, 2}, []int64{n1, n2})

	insertTicket := func(org, requester uuid.UUID, number int64, status string) error {
		_, err := db.ExecContext(ctx, `
			INSERT INTO tickets (id, org_id, number, subject, description, status, requester_id, channel)
			VALUES ($1, $2, $3, 'Printer on fire', 'It is really burning', $4, $5, 'web')`,
			uuid.Must(uuid.NewV7()), org, number, status, requester)
		return err
	}
	require.NoError(t, insertTicket(orgA, userA, 1, "new"))
	requirePgError(t, insertTicket(orgA, userA, 2, "exploded"), "23514", "tickets_status_check")
	requirePgError(t, insertTicket(orgA, userA, 1, "new"), "23505", "tickets_org_number_key")
	// A ticket cannot point at a user of another organisation.
	requirePgError(t, insertTicket(orgA, userB, 3, "new"), "23503", "")

	var hits int
	require.NoError(t, db.QueryRowContext(ctx, `
		SELECT count(*) FROM tickets
		WHERE org_id = $1 AND search @@ plainto_tsquery('simple', 'burning printer')`, orgA).Scan(&hits))
	require.Equal(t, 1, hits, "generated search column")

	// updated_at moves on hand-written UPDATEs.
	var created, updated time.Time
	require.NoError(t, db.QueryRowContext(ctx, `
		UPDATE tickets SET priority = 'high' WHERE org_id = $1 AND number = 1
		RETURNING created_at, updated_at`, orgA).Scan(&created, &updated))
	require.True(t, updated.After(created), "updated_at %v not after created_at %v", updated, created)

	testMachineAnnotations(t, db, orgA, userA)
}

// The triage stage's columns leave updated_at alone, so its UPDATE is HOT;
// vectors live in ticket_embeddings (migration 00011).
func testMachineAnnotations(t *testing.T, db *sql.DB, org, requester uuid.UUID) {
	ctx := context.Background()
	id := uuid.Must(uuid.NewV7())
	var created time.Time
	require.NoError(t, db.QueryRowContext(ctx, `
		INSERT INTO tickets (id, org_id, number, subject, requester_id, channel, updated_at)
		VALUES ($1, $2, 100, 'VPN down', $3, 'api', now() - interval '1 hour') RETURNING updated_at`, id, org, requester).Scan(&created))

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	var at time.Time
	var hot int64
	require.NoError(t, tx.QueryRowContext(ctx, `
		UPDATE tickets SET ai_suggested_priority = 'high', ai_suggested_category = 'network', ai_confidence = 0.75,
			ai_suggested_at = now() WHERE id = $1 RETURNING updated_at`, id).Scan(&at))
	require.True(t, at.Equal(created), "machine annotations moved updated_at to %v", at)
	require.NoError(t, tx.QueryRowContext(ctx, `SELECT pg_stat_get_xact_tuples_hot_updated('tickets'::regclass)`).Scan(&hot))
	require.EqualValues(t, 1, hot, "the triage UPDATE is HOT")
	require.NoError(t, tx.QueryRowContext(ctx, `UPDATE tickets SET ai_confidence = 0.5, category = 'network' WHERE id = $1
		RETURNING updated_at`, id).Scan(&at))
	require.True(t, at.After(created), "a human column with them moves updated_at")
	explicit := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, tx.QueryRowContext(ctx, `UPDATE tickets SET updated_at = $2, priority = 'low' WHERE id = $1
		RETURNING updated_at`, id, explicit).Scan(&at))
	require.True(t, at.Equal(explicit), "an updated_at set by the statement is kept: %v", at)
	require.NoError(t, tx.Commit())

	// Vectors: float32 little-endian, in the ticket's organisation, gone with it.
	vec := []byte{0, 0, 0xc0, 0x3f, 0, 0, 0x80, 0xbf} // 1.5, -1
	_, err = db.ExecContext(ctx, `INSERT INTO ticket_embeddings (ticket_id, org_id, model, embedding) VALUES ($1, $2, 'builtin', $3)`,
		id, org, vec[:3])
	requirePgError(t, err, "23514", "ticket_embeddings_embedding_check")
	_, err = db.ExecContext(ctx, `INSERT INTO ticket_embeddings (ticket_id, org_id, model, embedding) VALUES ($1, $2, 'builtin', $3)`,
		id, uuid.Must(uuid.NewV7()), vec)
	requirePgError(t, err, "23503", "")
	_, err = db.ExecContext(ctx, `INSERT INTO ticket_embeddings (ticket_id, org_id, model, embedding) VALUES ($1, $2, 'builtin', $3)`,
		id, org, vec)
	require.NoError(t, err)
	var n int
	_, err = db.ExecContext(ctx, `DELETE FROM tickets WHERE id = $1`, id)
	require.NoError(t, err)
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM ticket_embeddings WHERE ticket_id = $1`, id).Scan(&n))
	require.Zero(t, n, "ON DELETE CASCADE")
}

func sqlFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("sql")
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			names = append(names, e.Name())
		}
	}
	require.NotEmpty(t, names)
	return names
}

func versionRows(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM goose_db_version`).Scan(&n))
	return n
}

func requirePgError(t *testing.T, err error, code, contains string) {
	t.Helper()
	require.Error(t, err)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "not a PostgreSQL error: %v", err)
	require.Equal(t, code, pgErr.Code, "SQLSTATE of %v", err)
	if contains != "" {
		require.Contains(t, pgErr.Message+" "+pgErr.ConstraintName, contains)
	}
}

func openURL(t *testing.T, url string) (*gorm.DB, *sql.DB) {
	t.Helper()
	gdb, db, err := database.Open(context.Background(), url, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return gdb, db
}
