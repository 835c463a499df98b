// Package testenv gives tests their own PostgreSQL database (cloned from a
// migrated template) and their own Redis database index, on the real
// servers that `make test` starts. A test that cannot reach them fails; it
// never skips.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/migrations"
)

// AdminURL is a URL to the server's maintenance database with a role that
// may CREATE DATABASE.
func AdminURL() string {
	if u := os.Getenv("ATUMDESK_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://atumdesk:atumdesk@127.0.0.1:15432/postgres?sslmode=disable"
}

// RedisBaseURL is the test Redis.
func RedisBaseURL() string {
	if u := os.Getenv("ATUMDESK_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:16379/0"
}

// EmptyDatabase creates a new empty database and returns its URL; it is
// dropped when the test ends.
func EmptyDatabase(t testing.TB) string {
	t.Helper()
	return createDB(t, "")
}

// DatabaseURL returns the URL of a new database with every migration
// applied, cloned from a template built once per migration set.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	return createDB(t, template(t))
}

// DB opens a migrated database for the test.
func DB(t testing.TB) (*gorm.DB, *sql.DB) {
	t.Helper()
	url := DatabaseURL(t)
	gdb, sqlDB, err := database.Open(context.Background(), url, 10)
	if err != nil {
		t.Fatalf("testenv: open %s: %v", url, err)
	}
	t.Cleanup(func() { _ = sqlDB.Close() })
	return gdb, sqlDB
}

func admin(t testing.TB) *sql.DB {
	t.Helper()
	_, db, err := database.Open(context.Background(), AdminURL(), 2)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("testenv: PostgreSQL at %s is not reachable (run `make test`, which starts it): %v", AdminURL(), err)
	}
	return db
}

func createDB(t testing.TB, tmpl string) string {
	t.Helper()
	db := admin(t)
	defer db.Close()
	name := "t_" + randomHex(8)
	stmt := "CREATE DATABASE " + name
	if tmpl != "" {
		stmt += " TEMPLATE " + tmpl
	}
	if _, err := db.Exec(stmt); err != nil {
		t.Fatalf("testenv: %s: %v", stmt, err)
	}
	t.Cleanup(func() {
		db := admin(t)
		defer db.Close()
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	return withDatabase(AdminURL(), name)
}

// template builds (once per migration content) a migrated template database.
// An advisory lock serialises parallel test packages building it.
func template(t testing.TB) string {
	t.Helper()
	name := "tmpl_" + migrationsHash(t)
	db := admin(t)
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(874211)"); err != nil {
		t.Fatalf("testenv: lock: %v", err)
	}
	defer func() { _, _ = conn.ExecContext(ctx, "SELECT pg_advisory_unlock(874211)") }()
	var exists bool
	if err := conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if exists {
		return name
	}
	build := name + "_build"
	_, _ = conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+build+" WITH (FORCE)")
	if _, err := conn.ExecContext(ctx, "CREATE DATABASE "+build); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	_, mdb, err := database.Open(ctx, withDatabase(AdminURL(), build), 2)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := migrations.Up(ctx, mdb); err != nil {
		_ = mdb.Close()
		t.Fatalf("testenv: migrate template: %v", err)
	}
	_ = mdb.Close()
	if _, err := conn.ExecContext(ctx, "ALTER DATABASE "+build+" RENAME TO "+name); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return name
}

// migrationsHash names the template after the migration set compiled into
// this test binary (not the files on disk, which may be newer).
func migrationsHash(testing.TB) string { return migrations.Checksum()[:16] }

func withDatabase(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

// RedisURL allocates a Redis database index for the test (the test server
// runs with 256 databases), flushes it and returns its URL.
func RedisURL(t testing.TB) string {
	t.Helper()
	base, err := redis.ParseURL(RedisBaseURL())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	c := redis.NewClient(base)
	defer c.Close()
	ctx := context.Background()
	n, err := c.Incr(ctx, "atumdesk:test:next_db").Result()
	if err != nil {
		t.Fatalf("testenv: Redis at %s is not reachable (run `make test`, which starts it): %v", RedisBaseURL(), err)
	}
	idx := 1 + int(n%255)
	opts := *base
	opts.DB = idx
	rc := redis.NewClient(&opts)
	defer rc.Close()
	if err := rc.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("testenv: flush redis db %d: %v", idx, err)
	}
	u, _ := url.Parse(RedisBaseURL())
	u.Path = "/" + strconv.Itoa(idx)
	return u.String()
}

// Redis returns a client on a fresh database index.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// RepoRoot is the directory holding go.mod.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			panic("testenv: go.mod not found")
		}
		dir = parent
	}
}

// SharedData is a path under ../shared/data beside the checkout.
func SharedData(parts ...string) string {
	return filepath.Join(append([]string{RepoRoot(), "..", "shared", "data"}, parts...)...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToLower(hex.EncodeToString(b))
}
