// Package migrations holds the PostgreSQL schema as forward-only goose SQL
// migrations, embedded in the binary, and the functions that apply them.
//
// Migrations are applied at start-up and by `atumdesk migrate`; a server must
// refuse to start while Pending reports anything. Concurrent Up calls from
// several processes are serialised by a PostgreSQL session advisory lock, so
// every replica may call Up at boot.
package migrations

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed sql/*.sql
var embedded embed.FS

// MigrationStatus describes one migration file and whether it is applied.
type MigrationStatus struct {
	Version   int64
	Name      string // file name, e.g. "00002_tickets.sql"
	Applied   bool
	AppliedAt time.Time // zero when not applied
}

// Up applies every pending migration, each in its own transaction. It waits
// up to 5 minutes for another process that is migrating the same database.
func Up(ctx context.Context, db *sql.DB) error {
	p, err := newProvider(db)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: up: %w", err)
	}
	return nil
}

// Status lists every embedded migration in version order. Like Up it takes
// the migration lock, so it waits for a migration in progress to finish. It
// creates goose's version table (goose_db_version) if it is missing.
func Status(ctx context.Context, db *sql.DB) ([]MigrationStatus, error) {
	p, err := newProvider(db)
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: status: %w", err)
	}
	out := make([]MigrationStatus, 0, len(st))
	for _, s := range st {
		out = append(out, MigrationStatus{
			Version:   s.Source.Version,
			Name:      path.Base(s.Source.Path),
			Applied:   s.State == goose.StateApplied,
			AppliedAt: s.AppliedAt,
		})
	}
	return out, nil
}

// Pending returns the number of migrations not yet applied.
func Pending(ctx context.Context, db *sql.DB) (int, error) {
	st, err := Status(ctx, db)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range st {
		if !s.Applied {
			n++
		}
	}
	return n, nil
}

// newProvider builds a goose provider over the embedded files. The provider is
// deliberately never closed: Provider.Close closes the caller's *sql.DB.
func newProvider(db *sql.DB) (*goose.Provider, error) {
	fsys, err := fs.Sub(embedded, "sql")
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	// Poll the advisory lock every second (goose's default is 5 s) for up to
	// 5 minutes, so replicas waiting on a migrating peer start promptly.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, fmt.Errorf("migrations: locker: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return nil, fmt.Errorf("migrations: provider: %w", err)
	}
	return p, nil
}

// Checksum identifies the embedded migration set (file names and content),
// e.g. to name a template database built from exactly this set.
func Checksum() string {
	h := sha256.New()
	_ = fs.WalkDir(embedded, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(embedded, p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))
}
