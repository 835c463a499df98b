// Package database opens the PostgreSQL pool shared by gorm and plain SQL,
// and classifies database errors for the API.
package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/atumdesk/atumdesk/internal/apperr"
)

// Open connects to url with at most maxConns connections and returns gorm
// and the *sql.DB beneath it (for migrations and hand-written SQL).
func Open(ctx context.Context, url string, maxConns int) (*gorm.DB, *sql.DB, error) {
	sqlDB, err := sql.Open("pgx", url)
	if err != nil {
		return nil, nil, fmt.Errorf("database: open: %w", err)
	}
	sqlDB.SetMaxOpenConns(maxConns)
	sqlDB.SetMaxIdleConns(maxConns)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	gdb, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		TranslateError:         false,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		_ = sqlDB.Close()
		return nil, nil, fmt.Errorf("database: gorm: %w", err)
	}
	return gdb, sqlDB, nil
}

// Ping checks the database answers within ctx.
func Ping(ctx context.Context, db *sql.DB) error {
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("database: ping: %w", err)
	}
	return nil
}

// SQLState returns the PostgreSQL error code of err, or "".
func SQLState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// Classify maps a database error to an apperr kind: constraint violations
// are the client's fault (409/422), connection failures are 503, anything
// else is a bug (500). Already-classified errors pass through.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := apperr.As(err); ok {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return apperr.Wrap(apperr.Conflict, "A record with these values already exists.", err)
		case "23503", "23514", "23502", "22P02", "22001", "22007", "22008", "22023":
			return apperr.Wrap(apperr.Invalid, "The request violates a data constraint.", err)
		case "40001", "40P01", "57P01", "57P02", "57P03", "53300", "08000", "08003", "08006":
			return apperr.Wrap(apperr.Unavailable, "The database is busy or restarting; retry shortly.", err)
		}
		return apperr.Wrap(apperr.Internal, "Database error.", err)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		pgconn.Timeout(err) || pgconn.SafeToRetry(err) || strings.Contains(err.Error(), "conn closed") {
		return apperr.Wrap(apperr.Unavailable, "The database is unavailable; retry shortly.", err)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return apperr.Wrap(apperr.Unavailable, "The database is unavailable; retry shortly.", err)
	}
	return apperr.Wrap(apperr.Internal, "Database error.", err)
}

// Unavailable reports whether err means the database cannot be reached (so
// a batch is better retried whole later). A deadlock or serialisation
// failure is not: the work can go on, e.g. one item at a time.
func Unavailable(err error) bool {
	switch SQLState(err) {
	case "40001", "40P01":
		return false
	}
	return apperr.IsKind(Classify(err), apperr.Unavailable)
}
