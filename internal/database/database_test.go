package database

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/atumdesk/atumdesk/internal/apperr"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		kind apperr.Kind
	}{
		{&pgconn.PgError{Code: "23505"}, apperr.Conflict},
		{&pgconn.PgError{Code: "23503"}, apperr.Invalid},
		{&pgconn.PgError{Code: "57P01"}, apperr.Unavailable},
		{&pgconn.PgError{Code: "42P01"}, apperr.Internal},
		{fmt.Errorf("query: %w", io.ErrUnexpectedEOF), apperr.Unavailable},
		{context.DeadlineExceeded, apperr.Unavailable},
		{errors.New("something else"), apperr.Internal},
	}
	for _, c := range cases {
		if got := Classify(c.err); !apperr.IsKind(got, c.kind) {
			t.Errorf("Classify(%v) = %v, want %s", c.err, got, c.kind)
		}
	}
	if Classify(nil) != nil {
		t.Error("nil must stay nil")
	}
}

func TestUUIDArray(t *testing.T) {
	a, b := uuid.MustParse("01a216b4-852a-7c99-80dc-2ec40c7f519f"), uuid.MustParse("0195b2a0-0000-7000-8000-000000000001")
	if got, want := UUIDArray([]uuid.UUID{a, b}), "{"+a.String()+","+b.String()+"}"; got != want {
		t.Fatalf("UUIDArray = %q, want %q", got, want)
	}
	if got := UUIDArray(nil); got != "{}" {
		t.Fatalf("UUIDArray(nil) = %q", got)
	}
}
