// Package apperr is the one error type that services return and the HTTP
// layer maps to problem+json. A Kind says what went wrong in terms a client
// can act on; the wrapped cause is kept for logs and errors.Is.
package apperr

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error for clients.
type Kind string

const (
	Invalid      Kind = "validation"    // 422: the input is well-formed but wrong
	BadRequest   Kind = "bad-request"   // 400: the input cannot be read
	Unauthorized Kind = "unauthorized"  // 401
	Forbidden    Kind = "forbidden"     // 403
	NotFound     Kind = "not-found"     // 404 (also for other tenants' objects)
	Conflict     Kind = "conflict"      // 409
	TooLarge     Kind = "too-large"     // 413
	Unsupported  Kind = "unsupported"   // 415
	RateLimited  Kind = "rate-limited"  // 429
	Unavailable  Kind = "unavailable"   // 503: a dependency is down; retry later
	Internal     Kind = "internal"      // 500: a bug
	InvalidState Kind = "invalid-state" // 409: not allowed in the current state
)

// Error is a classified error.
type Error struct {
	Kind   Kind
	Msg    string            // safe to show to the client
	Fields map[string]string // field -> reason, for Invalid
	// RetryAfter is set for RateLimited and Unavailable.
	RetryAfter time.Duration
	// Extra members added to the problem document (e.g. allowed transitions).
	Extra map[string]any
	Err   error // cause, never shown to clients
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Kind, e.Msg, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Kind, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind with a client-facing message.
func New(kind Kind, msg string) *Error { return &Error{Kind: kind, Msg: msg} }

// Wrap classifies cause.
func Wrap(kind Kind, msg string, cause error) *Error { return &Error{Kind: kind, Msg: msg, Err: cause} }

// Fields returns a validation error; nil when fields is empty, so callers
// can `if err := apperr.Fields(errs); err != nil`.
func Fields(fields map[string]string) error {
	if len(fields) == 0 {
		return nil
	}
	return &Error{Kind: Invalid, Msg: "The request has invalid fields.", Fields: fields}
}

// As extracts an *Error from err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// IsKind reports whether err is classified as kind.
func IsKind(err error, kind Kind) bool {
	e, ok := As(err)
	return ok && e.Kind == kind
}
