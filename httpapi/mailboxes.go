package httpapi

import (
	"context"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/models"
)

// IMAP mailboxes of the caller's organisation (admin only) and the messages
// their poller quarantined. The password is sealed at rest (secretbox, bound
// to the mailbox id) and never returned; the poller (ingest/imap) opens it.

// mailboxView is a mailbox as the API shows it: no password, no lease
// holder (an infrastructure detail), whether it is being polled.
type mailboxView struct {
	ID               uuid.UUID           `json:"id"`
	OrgID            uuid.UUID           `json:"org_id"`
	Name             string              `json:"name"`
	Address          string              `json:"address"`
	IMAPHost         string              `json:"imap_host"`
	IMAPPort         int                 `json:"imap_port"`
	IMAPTLS          models.IMAPSecurity `json:"imap_tls"`
	IMAPUsername     string              `json:"imap_username"`
	HasPassword      bool                `json:"has_password"`
	Folder           string              `json:"folder"`
	AfterIngest      string              `json:"after_ingest"`
	UnknownSender    string              `json:"unknown_sender"` // create or quarantine
	IsActive         bool                `json:"is_active"`
	DefaultServiceID *uuid.UUID          `json:"default_service_id"`
	UIDValidity      *int64              `json:"uid_validity"`
	LastUID          int64               `json:"last_uid"`
	LastPolledAt     *time.Time          `json:"last_polled_at"`
	LastError        *string             `json:"last_error"`
	Polling          bool                `json:"polling"` // a poller holds its lease
	CreatedAt        time.Time           `json:"created_at"`
	UpdatedAt        time.Time           `json:"updated_at"`
}

const mailboxViewColumns = `id, org_id, name, address, imap_host, imap_port, imap_tls, imap_username,
	password_enc IS NOT NULL AS has_password, folder, after_ingest, unknown_sender, is_active, default_service_id,
	uid_validity, last_uid, last_polled_at, last_error, coalesce(lease_expires_at > now(), false) AS polling,
	created_at, updated_at`

// mailboxRequest is the body of create (all but the optional fields
// required) and of update (every field optional).
type mailboxRequest struct {
	Name         *string `json:"name"`
	Address      *string `json:"address"`
	IMAPHost     *string `json:"imap_host"`
	IMAPPort     *int    `json:"imap_port"`
	IMAPTLS      *string `json:"imap_tls"`
	IMAPUsername *string `json:"imap_username"`
	Password     *string `json:"password"`
	Folder       *string `json:"folder"`
	AfterIngest  *string `json:"after_ingest"`
	// UnknownSender: mail from an address that is no user of the
	// organisation creates a customer ("create", the default) or is held
	// in quarantine for an admin ("quarantine").
	UnknownSender *string `json:"unknown_sender"`
	IsActive      *bool   `json:"is_active"`
}

var (
	errMailboxNotFound    = apperr.New(apperr.NotFound, "Mailbox not found.")
	errQuarantineNotFound = apperr.New(apperr.NotFound, "Quarantined message not found.")
	hostnameRE            = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
)

// validFolder: an IMAP folder name, without control characters (they could
// break the command line they are sent in).
func validFolder(f string) bool {
	if f == "" || len(f) > 255 || strings.TrimSpace(f) != f {
		return false
	}
	for _, r := range f {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func validIMAPHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return len(h) <= 253 && hostnameRE.MatchString(h)
}

// check validates the fields present in req into fields and returns the
// column changes; create requires the mandatory ones. cur is the stored
// mailbox on update (nil on create).
func (req *mailboxRequest) check(cur *mailboxView, fields map[string]string) map[string]any {
	ch := map[string]any{}
	create := cur == nil
	if req.Name != nil {
		n := strings.TrimSpace(*req.Name)
		if len(n) > 200 {
			fields["name"] = "at most 200 characters"
		}
		ch["name"] = n
	}
	if req.Address != nil || create {
		a, ok := "", false
		if req.Address != nil {
			a, ok = normaliseEmail(*req.Address)
		}
		if !ok {
			fields["address"] = "must be the mailbox's e-mail address"
		}
		ch["address"] = a
	}
	if req.IMAPHost != nil || create {
		h := ""
		if req.IMAPHost != nil {
			h = strings.ToLower(strings.TrimSpace(*req.IMAPHost))
		}
		if !validIMAPHost(h) {
			fields["imap_host"] = "must be a host name or IP address"
		}
		ch["imap_host"] = h
	}
	mode := models.IMAPTLS
	if cur != nil {
		mode = cur.IMAPTLS
	}
	if req.IMAPTLS != nil {
		mode = models.IMAPSecurity(*req.IMAPTLS)
		if !mode.Valid() {
			fields["imap_tls"] = "must be tls, starttls or none"
		}
		ch["imap_tls"] = mode
	}
	if req.IMAPPort != nil {
		if *req.IMAPPort < 1 || *req.IMAPPort > 65535 {
			fields["imap_port"] = "must be 1..65535"
		}
		ch["imap_port"] = *req.IMAPPort
	} else if create {
		ch["imap_port"] = 993 // implicit TLS
		if mode != models.IMAPTLS {
			ch["imap_port"] = 143
		}
	}
	if req.IMAPUsername != nil || create {
		u := ""
		if req.IMAPUsername != nil {
			u = *req.IMAPUsername
		}
		if u == "" || len(u) > 320 || strings.ContainsAny(u, "\r\n\x00") {
			fields["imap_username"] = "is required, at most 320 characters, one line"
		}
		ch["imap_username"] = u
	}
	if req.Password != nil || create {
		if req.Password == nil || *req.Password == "" || len(*req.Password) > 1024 || strings.ContainsAny(*req.Password, "\r\n\x00") {
			fields["password"] = "is required, at most 1024 characters, one line"
		}
	}
	folder := "INBOX"
	if cur != nil {
		folder = cur.Folder
	}
	if req.Folder != nil {
		folder = *req.Folder
		if !validFolder(folder) {
			fields["folder"] = "must be an IMAP folder name (1..255 characters, no control characters)"
		}
		ch["folder"] = folder
	}
	if req.AfterIngest != nil {
		a := *req.AfterIngest
		if target, ok := strings.CutPrefix(a, "move:"); ok {
			if !validFolder(target) || target == folder {
				fields["after_ingest"] = "move:<folder> needs a folder other than the one polled"
			}
		} else if a != "seen" {
			fields["after_ingest"] = "must be seen or move:<folder>"
		}
		ch["after_ingest"] = a
	} else if cur != nil && req.Folder != nil && cur.AfterIngest == "move:"+folder {
		fields["after_ingest"] = "move:<folder> needs a folder other than the one polled"
	}
	if req.UnknownSender != nil {
		if u := *req.UnknownSender; u != models.UnknownSenderCreate && u != models.UnknownSenderQuarantine {
			fields["unknown_sender"] = "must be create or quarantine"
		}
		ch["unknown_sender"] = *req.UnknownSender
	}
	if req.IsActive != nil {
		ch["is_active"] = *req.IsActive
	}
	return ch
}

// checkIMAPTarget refuses a server on an internal address (loopback,
// private, link-local, metadata: SECURITY.md §1.3) unless
// ATUMDESK_IMAP_ALLOW_HOSTS allows it. The poller checks again on the
// address it dials, so a name that resolves elsewhere later gains nothing.
// The answer does not say what a name resolved to.
func (s *Server) checkIMAPTarget(ctx context.Context, ch map[string]any, cur *mailboxView, fields map[string]string) {
	_, newHost := ch["imap_host"]
	_, newPort := ch["imap_port"]
	if (!newHost && !newPort) || fields["imap_host"] != "" || fields["imap_port"] != "" {
		return
	}
	host, _ := ch["imap_host"].(string)
	port, _ := ch["imap_port"].(int)
	if cur != nil && !newHost {
		host = cur.IMAPHost
	}
	if cur != nil && !newPort {
		port = cur.IMAPPort
	}
	if err := s.imapGuard.CheckHost(ctx, host, port); err != nil {
		fields["imap_host"] = "is an internal address (loopback, private, link-local or metadata); " +
			"the operator may allow it with ATUMDESK_IMAP_ALLOW_HOSTS"
	}
}

// sealPassword seals pw for mailbox id.
func (s *Server) sealPassword(id uuid.UUID, pw string) ([]byte, error) {
	if s.secrets == nil {
		return nil, apperr.New(apperr.Unavailable, "Mailbox passwords cannot be stored: ATUMDESK_SECRET_KEY is not configured.")
	}
	return s.secrets.Seal([]byte(pw), id[:])
}

func (s *Server) findMailbox(ctx context.Context, p *Principal, id string) (*mailboxView, error) {
	mid, err := uuid.Parse(id)
	if err != nil {
		return nil, errMailboxNotFound
	}
	var m mailboxView
	err = s.db.WithContext(ctx).Table("mailboxes").Select(mailboxViewColumns).
		Where("id = ? AND org_id = ?", mid, p.OrgID).Take(&m).Error
	if err != nil {
		return nil, notFoundIfMissing(err, "Mailbox")
	}
	return &m, nil
}

func (s *Server) handleListMailboxes(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	page, err := parsePage(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := s.db.WithContext(r.Context()).Table("mailboxes").Select(mailboxViewColumns).Where("org_id = ?", p.OrgID)
	if page.After != uuid.Nil {
		q = q.Where("id > ?", page.After)
	}
	var rows []mailboxView
	if err := q.Order("id").Limit(page.Limit + 1).Find(&rows).Error; err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	writeJSON(w, http.StatusOK, pageOf(rows, page.Limit, func(m mailboxView) uuid.UUID { return m.ID }))
}

func (s *Server) handleGetMailbox(w http.ResponseWriter, r *http.Request) {
	m, err := s.findMailbox(r.Context(), mustPrincipal(r), chi.URLParam(r, "mailboxID"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// errAddressTaken: an address routes mail to exactly one organisation.
func errAddressTaken(err error) error {
	return &apperr.Error{Kind: apperr.Conflict, Msg: "A mailbox with this address already exists.",
		Fields: map[string]string{"address": "is taken"}, Err: err}
}

func (s *Server) handleCreateMailbox(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var req mailboxRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	fields := map[string]string{}
	ch := req.check(nil, fields)
	s.checkIMAPTarget(r.Context(), ch, nil, fields)
	if err := apperr.Fields(fields); err != nil {
		s.writeError(w, r, err)
		return
	}
	id := uuid.Must(uuid.NewV7())
	sealed, err := s.sealPassword(id, *req.Password)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ch["id"], ch["org_id"], ch["password_enc"], ch["credentials_ref"] = id, p.OrgID, sealed, "secretbox"
	if _, ok := ch["is_active"]; !ok {
		ch["is_active"] = true
	}
	err = s.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		if err := tx.Table("mailboxes").Create(ch).Error; err != nil {
			if database.SQLState(err) == "23505" {
				return errAddressTaken(err)
			}
			return err
		}
		return audit.Write(r.Context(), tx, s.auditEntry(r, p, "mailbox.created", "mailbox", id, nil, auditable(ch)))
	})
	if err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	m, err := s.findMailbox(r.Context(), p, id.String())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/admin/mailboxes/"+id.String())
	writeJSON(w, http.StatusCreated, m)
}

func (s *Server) handlePatchMailbox(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var req mailboxRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	cur, err := s.findMailbox(r.Context(), p, chi.URLParam(r, "mailboxID"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	fields := map[string]string{}
	ch := req.check(cur, fields)
	s.checkIMAPTarget(r.Context(), ch, cur, fields)
	if err := apperr.Fields(fields); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Password != nil {
		sealed, err := s.sealPassword(cur.ID, *req.Password)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		ch["password_enc"] = sealed
	}
	if len(ch) == 0 {
		writeJSON(w, http.StatusOK, cur)
		return
	}
	// Another account or folder is another UID space: start it like a new
	// mailbox (unread mail only) instead of reading its whole archive.
	if changed(ch, "imap_host", cur.IMAPHost) || changed(ch, "imap_username", cur.IMAPUsername) || changed(ch, "folder", cur.Folder) {
		ch["uid_validity"], ch["last_uid"] = nil, 0
	}
	// The running poller reconnects with the new settings.
	ch["config_version"] = gorm.Expr("config_version + 1")
	ch["last_error"] = nil
	err = s.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		if err := tx.Table("mailboxes").Where("id = ? AND org_id = ?", cur.ID, p.OrgID).Updates(ch).Error; err != nil {
			if database.SQLState(err) == "23505" {
				return errAddressTaken(err)
			}
			return err
		}
		return audit.Write(r.Context(), tx, s.auditEntry(r, p, "mailbox.updated", "mailbox", cur.ID, cur, auditable(ch)))
	})
	if err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	s.handleGetMailbox(w, r)
}

func changed(ch map[string]any, col, cur string) bool {
	v, ok := ch[col].(string)
	return ok && v != cur
}

// auditable is a change set without secrets or SQL expressions.
func auditable(ch map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range ch {
		switch k {
		case "password_enc":
			out["password_changed"] = true
		case "config_version", "last_error", "uid_validity", "last_uid":
		default:
			out[k] = v
		}
	}
	return out
}

// handleDeleteMailbox removes the mailbox with its dedupe record and
// quarantine; tickets it created stay. The poller holding it notices at
// its next lease renewal and stops.
func (s *Server) handleDeleteMailbox(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	cur, err := s.findMailbox(r.Context(), p, chi.URLParam(r, "mailboxID"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	err = s.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`DELETE FROM mailboxes WHERE id = ? AND org_id = ?`, cur.ID, p.OrgID).Error; err != nil {
			return err
		}
		return audit.Write(r.Context(), tx, s.auditEntry(r, p, "mailbox.deleted", "mailbox", cur.ID, cur, nil))
	})
	if err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// quarantineView is a quarantined message: where it came from, why it
// failed and its replay state.
type quarantineView struct {
	ID          uuid.UUID  `json:"id"`
	MailboxID   uuid.UUID  `json:"mailbox_id"`
	MailboxAddr string     `json:"mailbox_address"`
	UIDValidity int64      `json:"uid_validity"`
	UID         int64      `json:"uid"`
	MessageID   *string    `json:"message_id"`
	RawSHA256   *string    `json:"raw_sha256"`
	RawSize     int64      `json:"raw_size"`
	Error       string     `json:"error"`
	Attempts    int        `json:"attempts"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	ReplayedAt  *time.Time `json:"replayed_at"`
	Replayable  bool       `json:"replayable"`
}

const quarantineColumns = `q.id, q.mailbox_id, m.address AS mailbox_addr, q.uid_validity, q.uid, q.message_id, q.raw_sha256,
	q.raw_size, q.error, q.attempts, q.status, q.created_at, q.updated_at, q.replayed_at,
	q.raw_sha256 IS NOT NULL AND q.status = 'quarantined' AS replayable`

func (s *Server) quarantineQuery(ctx context.Context, p *Principal) *gorm.DB {
	return s.db.WithContext(ctx).Table("mail_quarantine q").Select(quarantineColumns).
		Joins("JOIN mailboxes m ON m.id = q.mailbox_id").Where("q.org_id = ?", p.OrgID)
}

// handleListQuarantine lists the organisation's quarantined messages,
// newest first; ?status= and ?mailbox_id= filter.
func (s *Server) handleListQuarantine(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	v := r.URL.Query()
	page, err := parsePage(v)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	fields := map[string]string{}
	q := s.quarantineQuery(r.Context(), p)
	if st := v.Get("status"); st != "" {
		if st != models.QuarantineHeld && st != models.QuarantineReplay && st != models.QuarantineReplayed {
			fields["status"] = "must be quarantined, replay or replayed"
		}
		q = q.Where("q.status = ?", st)
	}
	if mb := v.Get("mailbox_id"); mb != "" {
		id, err := uuid.Parse(mb)
		if err != nil {
			fields["mailbox_id"] = "must be a mailbox id"
		}
		q = q.Where("q.mailbox_id = ?", id)
	}
	if err := apperr.Fields(fields); err != nil {
		s.writeError(w, r, err)
		return
	}
	if page.After != uuid.Nil {
		q = q.Where("q.id < ?", page.After)
	}
	var rows []quarantineView
	if err := q.Order("q.id DESC").Limit(page.Limit + 1).Find(&rows).Error; err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	writeJSON(w, http.StatusOK, pageOf(rows, page.Limit, func(q quarantineView) uuid.UUID { return q.ID }))
}

// handleReplayQuarantine asks the poller holding the message's mailbox to
// hand it to ingest again from the stored raw bytes (202: it happens within
// seconds; the status moves to replayed, or back to quarantined with the
// new error).
func (s *Server) handleReplayQuarantine(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	id, err := uuid.Parse(chi.URLParam(r, "quarantineID"))
	if err != nil {
		s.writeError(w, r, errQuarantineNotFound)
		return
	}
	var cur quarantineView
	if err := s.quarantineQuery(r.Context(), p).Where("q.id = ?", id).Take(&cur).Error; err != nil {
		s.writeError(w, r, notFoundIfMissing(err, "Quarantined message"))
		return
	}
	switch {
	case cur.RawSHA256 == nil:
		s.writeError(w, r, apperr.New(apperr.InvalidState, "The raw message was not stored (larger than the limit); it cannot be replayed."))
		return
	case cur.Status != models.QuarantineHeld:
		s.writeError(w, r, apperr.New(apperr.InvalidState, "Only a quarantined message can be replayed; this one is "+cur.Status+"."))
		return
	}
	err = s.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE mail_quarantine SET status = 'replay' WHERE id = ? AND org_id = ? AND status = 'quarantined'`, id, p.OrgID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return apperr.New(apperr.InvalidState, "The message is already being replayed.")
		}
		return audit.Write(r.Context(), tx, s.auditEntry(r, p, "mail_quarantine.replay_requested", "mail_quarantine", id,
			map[string]any{"status": cur.Status}, map[string]any{"status": models.QuarantineReplay}))
	})
	if err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	cur.Status, cur.Replayable = models.QuarantineReplay, false
	writeJSON(w, http.StatusAccepted, cur)
}
