// Package migrationstest gives tests a throwaway PostgreSQL database.
//
// The server is taken from ATUMDESK_TEST_DATABASE_URL (default: the local
// stack of deploy/local/stack.sh); its role needs CREATEDB. A test that cannot
// reach PostgreSQL fails: it never skips.
package migrationstest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/atumdesk/atumdesk/migrations"
)

// EnvURL names the environment variable holding the server URL.
const EnvURL = "ATUMDESK_TEST_DATABASE_URL"

// DefaultURL is used when EnvURL is unset.
const DefaultURL = "postgres://atumdesk:atumdesk@127.0.0.1:15432/postgres?sslmode=disable"

// ServerURL returns the URL of the test server's maintenance database.
func ServerURL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// EmptyDB creates a new, empty database with a random name and returns a
// connection to it and its URL. The database is dropped when the test ends.
func EmptyDB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	admin, err := sql.Open("pgx", ServerURL())
	if err != nil {
		t.Fatalf("migrationstest: open %s: %v", redact(ServerURL()), err)
	}
	if err := admin.PingContext(ctx); err != nil {
		_ = admin.Close()
		t.Fatalf("migrationstest: PostgreSQL unreachable at %s (set %s or run `bash deploy/local/stack.sh up`): %v",
			redact(ServerURL()), EnvURL, err)
	}

	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "atumdesk_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		_ = admin.Close()
		t.Fatalf("migrationstest: create database: %v", err)
	}

	u, err := url.Parse(ServerURL())
	if err != nil {
		t.Fatalf("migrationstest: parse URL: %v", err)
	}
	u.Path = "/" + name
	dbURL := u.String()

	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatalf("migrationstest: open %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("migrationstest: drop database %s: %v", name, err)
		}
		_ = admin.Close()
	})
	return db, dbURL
}

// MigratedDB is EmptyDB with every migration applied.
func MigratedDB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	db, dbURL := EmptyDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatalf("migrationstest: %v", err)
	}
	return db, dbURL
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
