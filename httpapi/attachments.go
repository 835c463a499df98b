package httpapi

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/storage"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// eventAttachmentAdded is the domain event of a file attached directly to a
// ticket (files of comments travel with comment.added).
const eventAttachmentAdded = "attachment.added"

// attachmentView is an attachment as the API shows it. The storage key is
// never shown.
type attachmentView struct {
	ID          uuid.UUID  `json:"id"`
	TicketID    *uuid.UUID `json:"ticket_id"`
	CommentID   *uuid.UUID `json:"comment_id"`
	UploadedBy  *uuid.UUID `json:"uploaded_by"`
	Filename    string     `json:"filename"`
	MimeType    string     `json:"mime_type"`
	SizeBytes   int64      `json:"size_bytes"`
	SHA256      string     `json:"sha256"`
	AccessCount int64      `json:"access_count"`
	CreatedAt   time.Time  `json:"created_at"`
	DownloadURL string     `json:"download_url"`
}

func newAttachmentView(a *models.Attachment) attachmentView {
	return attachmentView{ID: a.ID, TicketID: a.TicketID, CommentID: a.CommentID, UploadedBy: a.UploadedBy,
		Filename: a.Filename, MimeType: a.MimeType, SizeBytes: a.SizeBytes, SHA256: hex.EncodeToString(a.SHA256),
		AccessCount: a.AccessCount, CreatedAt: a.CreatedAt, DownloadURL: "/api/v1/attachments/" + a.ID.String()}
}

// multipartSlack is what a multipart body may carry beyond the file itself
// (boundaries, part headers, a few small fields).
const multipartSlack = 64 << 10

// uploadPart returns the part named "file" of a multipart/form-data body and
// the file name the client gave, without buffering anything: the part is
// read by the caller straight into storage. The body is capped at the
// upload limit plus multipartSlack, and a declared Content-Length over that
// is refused before a byte is read.
func (s *Server) uploadPart(w http.ResponseWriter, r *http.Request) (*multipart.Part, string, error) {
	limit := s.attachments.MaxBytes() + multipartSlack
	tooLarge := &apperr.Error{Kind: apperr.TooLarge, Msg: "The file exceeds the upload limit of " +
		strconv.FormatInt(s.attachments.MaxBytes(), 10) + " bytes.", Extra: map[string]any{"max_bytes": s.attachments.MaxBytes()}}
	if r.ContentLength > limit {
		return nil, "", tooLarge
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, "", apperr.Wrap(apperr.Unsupported, "Send the file as multipart/form-data in a part named file.", err)
	}
	for skipped := 0; ; skipped++ {
		part, err := mr.NextPart()
		var mbe *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return nil, "", apperr.Fields(map[string]string{"file": "is required (a multipart part named file)"})
		case errors.As(err, &mbe):
			return nil, "", tooLarge
		case err != nil:
			return nil, "", apperr.Wrap(apperr.BadRequest, "Malformed multipart body.", err)
		}
		if part.FormName() == "file" {
			// The raw name (FileName would apply filepath.Base, which knows
			// only "/"): storage.SanitizeFilename does the whole job.
			_, params, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
			return part, params["filename"], nil
		}
		// Other fields are skipped; they must be small and few.
		if n, _ := io.Copy(io.Discard, io.LimitReader(part, 4<<10+1)); n > 4<<10 || skipped >= 8 {
			return nil, "", apperr.New(apperr.BadRequest, "Only a part named file and a few small fields are accepted.")
		}
	}
}

// handleUploadAttachment stores an upload not yet linked to anything; a
// later ticket or comment claims it by listing it in attachment_ids.
func (s *Server) handleUploadAttachment(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	part, name, err := s.uploadPart(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	att, err := s.attachments.Save(r.Context(), s.db, storage.Upload{OrgID: p.OrgID, UploadedBy: &p.UserID, Filename: name, Body: part},
		func(tx *gorm.DB, att *models.Attachment) error {
			return audit.Write(r.Context(), tx, s.auditEntry(r, p, "attachment.uploaded", "attachment", att.ID, nil,
				map[string]any{"filename": att.Filename, "mime_type": att.MimeType, "size_bytes": att.SizeBytes, "sha256": hex.EncodeToString(att.SHA256)}))
		})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/attachments/"+att.ID.String())
	writeJSON(w, http.StatusCreated, newAttachmentView(att))
}

// handleAttachToTicket stores an upload straight onto a ticket the caller
// can see (a public file: customers of the ticket see it). Closed and
// cancelled tickets are read-only.
func (s *Server) handleAttachToTicket(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	t, err := s.pathTicket(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if t.Status.ReadOnly() {
		s.writeError(w, r, apperr.New(apperr.InvalidState, "The ticket is "+string(t.Status)+" and read-only."))
		return
	}
	part, name, err := s.uploadPart(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	up := storage.Upload{OrgID: p.OrgID, UploadedBy: &p.UserID, TicketID: &t.ID, Filename: name, Body: part}
	att, err := s.attachments.Save(r.Context(), s.db, up, func(tx *gorm.DB, att *models.Attachment) error {
		// The ticket may have been closed while the file streamed in.
		var status models.TicketStatus
		if err := tx.Raw(`SELECT status FROM tickets WHERE org_id = ? AND id = ? FOR SHARE`, t.OrgID, t.ID).Scan(&status).Error; err != nil {
			return err
		}
		if status.ReadOnly() {
			return apperr.New(apperr.InvalidState, "The ticket is "+string(status)+" and read-only.")
		}
		e := s.auditEntry(r, p, "attachment.added", "attachment", att.ID, nil,
			map[string]any{"filename": att.Filename, "mime_type": att.MimeType, "size_bytes": att.SizeBytes, "sha256": hex.EncodeToString(att.SHA256)})
		e.TicketID = &t.ID
		if err := audit.Write(r.Context(), tx, e); err != nil {
			return err
		}
		ev, err := pipeline.NewEvent(eventAttachmentAdded, pipeline.TicketRef{OrgID: t.OrgID, TicketID: t.ID, RequesterID: t.RequesterID},
			&p.UserID, pipeline.AudiencePublic, map[string]any{"attachment_id": att.ID, "filename": att.Filename,
				"mime_type": att.MimeType, "size_bytes": att.SizeBytes})
		if err != nil {
			return err
		}
		return pipeline.EmitEvents(r.Context(), tx, ev)
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/attachments/"+att.ID.String())
	writeJSON(w, http.StatusCreated, newAttachmentView(att))
}

// pathTicket is the {ticketID} of the path, if the caller can see it.
func (s *Server) pathTicket(r *http.Request) (*models.Ticket, error) {
	id, err := ticketIDParam(r)
	if err != nil {
		return nil, err
	}
	return s.tickets.Get(r.Context(), ticketActor(r), id)
}

var errAttachmentNotFound = apperr.New(apperr.NotFound, "Attachment not found.")

// visibleAttachment loads an attachment the caller may download: an
// unclaimed upload only by its uploader; otherwise through its ticket's
// visibility, and never an internal note's file for a customer. Everything
// else is "not found".
func (s *Server) visibleAttachment(r *http.Request) (*models.Attachment, error) {
	p := mustPrincipal(r)
	id, err := uuid.Parse(chi.URLParam(r, "attachmentID"))
	if err != nil {
		return nil, errAttachmentNotFound
	}
	var row struct {
		models.Attachment
		NoteTicketID *uuid.UUID `gorm:"column:note_ticket_id"`
		IsInternal   *bool      `gorm:"column:is_internal"`
	}
	err = s.db.WithContext(r.Context()).Raw(`SELECT a.*, c.ticket_id AS note_ticket_id, c.is_internal
		FROM attachments a LEFT JOIN comments c ON c.org_id = a.org_id AND c.id = a.comment_id
		WHERE a.org_id = ? AND a.id = ?`, p.OrgID, id).Scan(&row).Error
	if err != nil {
		return nil, database.Classify(err)
	}
	att := &row.Attachment
	if att.ID == uuid.Nil {
		return nil, errAttachmentNotFound
	}
	ticketID := att.TicketID
	if ticketID == nil {
		ticketID = row.NoteTicketID
	}
	if ticketID == nil {
		if att.UploadedBy == nil || *att.UploadedBy != p.UserID {
			return nil, errAttachmentNotFound
		}
		return att, nil
	}
	if row.IsInternal != nil && *row.IsInternal && !p.IsStaff() {
		return nil, errAttachmentNotFound
	}
	if _, err := s.tickets.Get(r.Context(), ticketActor(r), *ticketID); err != nil {
		if apperr.IsKind(err, apperr.NotFound) {
			return nil, errAttachmentNotFound
		}
		return nil, err
	}
	return att, nil
}

// handleDownloadAttachment serves a file only after its SHA-256 matched the
// recorded one. It is always a download (Content-Disposition: attachment),
// never sniffed (nosniff) and, should a browser render it anyway, in a
// sandbox without script or same-origin access.
func (s *Server) handleDownloadAttachment(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	att, err := s.visibleAttachment(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.attachments.Open(r.Context(), att)
	if errors.Is(err, storage.ErrIntegrity) {
		s.refuseTampered(w, r, p, att, err)
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer body.Close()
	err = s.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`UPDATE attachments SET access_count = access_count + 1 WHERE org_id = ? AND id = ?`, att.OrgID, att.ID).Error; err != nil {
			return err
		}
		e := s.auditEntry(r, p, "attachment.downloaded", "attachment", att.ID, nil, map[string]any{"filename": att.Filename})
		e.TicketID = att.TicketID
		return audit.Write(r.Context(), tx, e)
	})
	if err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", att.MimeType)
	h.Set("Content-Length", strconv.FormatInt(att.SizeBytes, 10))
	h.Set("Content-Disposition", storage.ContentDisposition(att.Filename))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(att.SHA256)+":") // RFC 9530
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, body); err != nil {
		if errors.Is(err, storage.ErrIntegrity) {
			// Changed on disk after the check: cut the response short so
			// the client cannot take it for complete.
			s.log.ErrorContext(r.Context(), "attachment changed while being served", "attachment_id", att.ID, "err", err)
			s.auditIntegrity(r, p, att)
		}
		panic(http.ErrAbortHandler)
	}
}

// refuseTampered answers a download whose stored file no longer matches
// its hash. It is the server's fault, not the client's: a 500 (logged and
// counted as a 5xx, so it alerts), audited as attachment.integrity_failed,
// with a stable "integrity" member telling clients why.
func (s *Server) refuseTampered(w http.ResponseWriter, r *http.Request, p *Principal, att *models.Attachment, cause error) {
	s.auditIntegrity(r, p, att)
	s.writeError(w, r, &apperr.Error{Kind: apperr.Internal,
		Msg:   "The stored file failed its integrity check and is withheld; administrators have been alerted.",
		Extra: map[string]any{"integrity": "sha256-mismatch"}, Err: cause})
}

func (s *Server) auditIntegrity(r *http.Request, p *Principal, att *models.Attachment) {
	e := s.auditEntry(r, p, "attachment.integrity_failed", "attachment", att.ID, nil,
		map[string]any{"filename": att.Filename, "expected_sha256": hex.EncodeToString(att.SHA256)})
	e.TicketID = att.TicketID
	if err := audit.Write(r.Context(), s.db, e); err != nil {
		s.log.ErrorContext(r.Context(), "audit attachment.integrity_failed", "attachment_id", att.ID, "err", err)
	}
}

// ticketAttachmentView is a file of a ticket in its list: IsInternal marks
// a file of an internal note (only staff are ever shown one).
type ticketAttachmentView struct {
	attachmentView
	IsInternal bool `json:"is_internal"`
}

// handleListTicketAttachments lists the files of a ticket the caller can
// see, oldest first (keyset by id): those attached to the ticket itself and
// those of its comments. A customer never gets a file of an internal note.
func (s *Server) handleListTicketAttachments(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	t, err := s.pathTicket(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pg, err := parsePage(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var rows []struct {
		models.Attachment
		IsInternal bool `gorm:"column:is_internal"`
	}
	// A comment's file may carry no ticket_id: it belongs through the comment.
	q := s.db.WithContext(r.Context()).Table("attachments a").
		Select("a.*, coalesce(c.is_internal, false) AS is_internal").
		Joins("LEFT JOIN comments c ON c.org_id = a.org_id AND c.id = a.comment_id").
		Where("a.org_id = ? AND (a.ticket_id = ? OR c.ticket_id = ?)", t.OrgID, t.ID, t.ID)
	if !p.IsStaff() {
		q = q.Where("coalesce(c.is_internal, false) = false")
	}
	if pg.After != uuid.Nil {
		q = q.Where("a.id > ?", pg.After)
	}
	if err := q.Order("a.id").Limit(pg.Limit + 1).Scan(&rows).Error; err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	views := make([]ticketAttachmentView, len(rows))
	for i := range rows {
		views[i] = ticketAttachmentView{attachmentView: newAttachmentView(&rows[i].Attachment), IsInternal: rows[i].IsInternal}
	}
	writeJSON(w, http.StatusOK, pageOf(views, pg.Limit, func(v ticketAttachmentView) uuid.UUID { return v.ID }))
}
