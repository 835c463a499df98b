package storage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/models"
)

// DefaultMaxBytes is the default upload limit (50 MB).
const DefaultMaxBytes = 50 << 20

// ErrIntegrity means a stored file no longer matches the size and SHA-256
// recorded when it was uploaded (tampering, corruption or loss).
var ErrIntegrity = errors.New("storage: attachment content does not match its recorded size and SHA-256")

// Attachments receives, records and reads back attachment files.
type Attachments struct {
	store    Store
	maxBytes int64
}

// NewAttachments serves uploads of at most maxBytes (DefaultMaxBytes when
// maxBytes <= 0) into store.
func NewAttachments(store Store, maxBytes int64) *Attachments {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Attachments{store: store, maxBytes: maxBytes}
}

// MaxBytes is the upload limit.
func (a *Attachments) MaxBytes() int64 { return a.maxBytes }

// Upload is one arriving file.
type Upload struct {
	OrgID      uuid.UUID
	UploadedBy *uuid.UUID // nil for files that arrive by e-mail from unknown senders
	TicketID   *uuid.UUID // nil until claimed
	CommentID  *uuid.UUID
	Filename   string  // as sent by the client; Save sanitises it
	ContentID  *string // Content-ID of an inline e-mail part
	Body       io.Reader
}

// Save streams u.Body into the store and records it. The type is decided on
// the first bytes before anything is written; at most MaxBytes are read
// (one more byte and the upload stops with a 413, the partial file is
// removed); the SHA-256 is computed on the way. The row is inserted and
// then (audit, events; may be nil) run in one transaction on db; if that
// fails the stored file is removed again.
func (a *Attachments) Save(ctx context.Context, db *gorm.DB, u Upload, then func(tx *gorm.DB, att *models.Attachment) error) (*models.Attachment, error) {
	if a.store == nil {
		return nil, apperr.New(apperr.Unavailable, "Attachment storage is not configured.")
	}
	name := SanitizeFilename(u.Filename)
	br := bufio.NewReaderSize(&sourceReader{u.Body}, SniffLen)
	head, err := br.Peek(SniffLen)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, a.readError(err)
	}
	if len(head) == 0 {
		return nil, apperr.Fields(map[string]string{"file": "is empty"})
	}
	mimeType, err := Sniff(head, name)
	if err != nil {
		return nil, err
	}
	sum := sha256.New()
	key := uuid.NewString() // random (v4): nothing about the file or its time
	size, err := a.store.Put(ctx, key, io.TeeReader(&capReader{r: br, left: a.maxBytes}, sum))
	if err != nil {
		return nil, a.readError(err)
	}
	att := &models.Attachment{
		OrgID: u.OrgID, TicketID: u.TicketID, CommentID: u.CommentID, UploadedBy: u.UploadedBy,
		Filename: name, MimeType: mimeType, SizeBytes: size, SHA256: sum.Sum(nil), StorageKey: key, ContentID: u.ContentID,
	}
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(att).Error; err != nil {
			return fmt.Errorf("storage: insert attachment: %w", err)
		}
		if then != nil {
			return then(tx, att)
		}
		return nil
	})
	if err != nil {
		_ = a.store.Delete(context.WithoutCancel(ctx), key)
		return nil, database.Classify(err)
	}
	return att, nil
}

// readError classifies a failed upload: too large, a broken request body
// (client gone, malformed multipart), or the store failing.
func (a *Attachments) readError(err error) error {
	var tooLarge *http.MaxBytesError
	var src *sourceError
	switch {
	case errors.Is(err, errTooLarge) || errors.As(err, &tooLarge):
		return &apperr.Error{Kind: apperr.TooLarge, Msg: "The file exceeds the upload limit of " + strconv.FormatInt(a.maxBytes, 10) + " bytes.",
			Extra: map[string]any{"max_bytes": a.maxBytes}, Err: err}
	case errors.As(err, &src), errors.Is(err, context.Canceled):
		return apperr.Wrap(apperr.BadRequest, "The upload was interrupted or malformed.", err)
	}
	return apperr.Wrap(apperr.Unavailable, "Attachment storage failed; retry shortly.", err)
}

var errTooLarge = errors.New("storage: upload exceeds the size limit")

// capReader passes at most left bytes and fails with errTooLarge as soon
// as one more arrives, so an oversized upload is never read to its end.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return 0, errTooLarge
	}
	return n, err
}

// sourceError marks a failure of the uploader's stream, as opposed to the
// store's.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "storage: reading upload: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

type sourceReader struct{ r io.Reader }

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

// Open returns att's content after checking the stored file's size and
// SHA-256 against the row: a mismatch or a missing file is ErrIntegrity
// and nothing is returned. The reader checks again while streaming and
// ends with ErrIntegrity instead of io.EOF if the file changed in between.
func (a *Attachments) Open(ctx context.Context, att *models.Attachment) (io.ReadCloser, error) {
	if a.store == nil {
		return nil, apperr.New(apperr.Unavailable, "Attachment storage is not configured.")
	}
	f, err := a.store.Open(ctx, att.StorageKey)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %s is missing", ErrIntegrity, att.StorageKey)
	}
	if err != nil {
		return nil, apperr.Wrap(apperr.Unavailable, "Attachment storage failed; retry shortly.", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, f})
	if err == nil && (n != att.SizeBytes || !bytes.Equal(h.Sum(nil), att.SHA256)) {
		err = fmt.Errorf("%w: %s has %d bytes, sha256 %x", ErrIntegrity, att.StorageKey, n, h.Sum(nil))
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		_ = f.Close()
		if errors.Is(err, ErrIntegrity) || errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, apperr.Wrap(apperr.Unavailable, "Attachment storage failed; retry shortly.", err)
	}
	return &verifyingReader{f: f, h: sha256.New(), want: att.SHA256, size: att.SizeBytes}, nil
}

type verifyingReader struct {
	f    io.ReadCloser
	h    hash.Hash
	want []byte
	size int64
	read int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.f.Read(p)
	v.h.Write(p[:n])
	v.read += int64(n)
	if errors.Is(err, io.EOF) && (v.read != v.size || !bytes.Equal(v.h.Sum(nil), v.want)) {
		return n, ErrIntegrity
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.f.Close() }

// Claim links uploads to a ticket (and, with commentID, to a comment of
// it) inside the caller's transaction tx. Every id must be an unlinked
// upload of uploaderID in orgID; otherwise Claim returns a 422 on
// attachment_ids and the caller must roll tx back (some rows may already
// be updated). Duplicated ids count once.
func Claim(ctx context.Context, tx *gorm.DB, orgID, uploaderID uuid.UUID, ids []uuid.UUID, ticketID uuid.UUID, commentID *uuid.UUID) error {
	seen := make(map[uuid.UUID]bool, len(ids))
	unique := make([]uuid.UUID, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			unique = append(unique, id)
		}
	}
	if len(unique) == 0 {
		return nil
	}
	res := tx.WithContext(ctx).Exec(`UPDATE attachments SET ticket_id = ?, comment_id = ?
		WHERE org_id = ? AND uploaded_by = ? AND id IN ? AND ticket_id IS NULL AND comment_id IS NULL`,
		ticketID, commentID, orgID, uploaderID, unique)
	if res.Error != nil {
		return database.Classify(fmt.Errorf("storage: claim attachments: %w", res.Error))
	}
	if res.RowsAffected != int64(len(unique)) {
		return apperr.Fields(map[string]string{"attachment_ids": "must name your own uploads that are not attached yet"})
	}
	return nil
}

// PurgeUnlinked deletes uploads never claimed by a ticket or comment and
// older than maxAge, rows first and then their files (a crash in between
// leaves only unreferenced files, never rows without files). It returns
// how many were removed.
func (a *Attachments) PurgeUnlinked(ctx context.Context, db *gorm.DB, maxAge time.Duration) (int, error) {
	var keys []string
	err := db.WithContext(ctx).Raw(`DELETE FROM attachments
		WHERE ticket_id IS NULL AND comment_id IS NULL AND created_at < ?
		RETURNING storage_key`, time.Now().Add(-maxAge)).Scan(&keys).Error
	if err != nil {
		return 0, fmt.Errorf("storage: purge unlinked: %w", err)
	}
	for _, k := range keys {
		if err := a.store.Delete(ctx, k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}
