// Package storage keeps attachment files: a small blob Store interface
// (local filesystem by default), the upload pipeline in front of it (size
// limit enforced while streaming, type decided by content sniffing,
// sanitised names, SHA-256) and integrity-checked reads.
//
// Decisions:
//   - HTML, SVG, XML and script are refused at upload (415), whatever their
//     name or declared type, and so is any file named like active content
//     (.html, .svg, .js, .exe, …). Serving them "as a download only" would
//     still run their script when the user opens the saved file.
//   - Everything accepted is served as a download with nosniff and
//     CSP sandbox (see httpapi), under its sniffed type.
//   - Names are metadata only; the bytes live under a random UUID key.
//   - A file whose size or SHA-256 no longer matches its row is withheld:
//     ErrIntegrity, which the API answers with a 500 (the server's fault,
//     alerting like any 5xx) and an attachment.integrity_failed audit row.
package storage

import (
	"context"
	"errors"
	"io"
)

// ErrNotFound is returned by Store.Open for a key that holds nothing.
var ErrNotFound = errors.New("storage: object not found")

// Store holds blobs under opaque keys the caller generates. Keys are never
// derived from user input, so a backend need not trust or escape them
// beyond checking their shape.
type Store interface {
	// Put streams r into a new object named key. The object becomes
	// visible only when r is drained without error: a failed or oversized
	// upload leaves nothing behind.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	// Open returns the object for reading. Seeking lets a reader verify the
	// content and then stream it from the same handle; a backend without
	// native seeking can spool to a temporary file.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, error)
	// Delete removes the object; deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
}
