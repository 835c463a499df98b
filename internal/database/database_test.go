package database

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

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
