package httpapi

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/auth"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/models"
)

// auditView is one audit row. IP and user agent are personal data: only
// holders of auth.AuditRead see them.
type auditView struct {
	ID         int64            `json:"id"`
	TicketID   *uuid.UUID       `json:"ticket_id"`
	UserID     *uuid.UUID       `json:"user_id"`
	ActorKind  models.ActorKind `json:"actor_kind"`
	Action     string           `json:"action"`
	EntityType string           `json:"entity_type"`
	EntityID   *uuid.UUID       `json:"entity_id"`
	Before     models.JSONB     `json:"before"`
	After      models.JSONB     `json:"after"`
	IP         *string          `json:"ip,omitempty"`
	UserAgent  *string          `json:"user_agent,omitempty"`
	RequestID  *string          `json:"request_id"`
	CreatedAt  time.Time        `json:"created_at"`
}

const auditColumns = "audit_log.id, audit_log.ticket_id, audit_log.user_id, audit_log.actor_kind, audit_log.action, " +
	"audit_log.entity_type, audit_log.entity_id, audit_log.before, audit_log.after, audit_log.ip, audit_log.user_agent, " +
	"audit_log.request_id, audit_log.created_at"

// auditFilter is the query of the audit endpoints. Rows are listed newest
// first; After is the last id seen (keyset on the identity).
type auditFilter struct {
	Action   string // exact, or a prefix when it ends in ".*" (ticket.*)
	UserID   *uuid.UUID
	TicketID *uuid.UUID
	From, To *time.Time // created_at in [From, To)
	After    int64
	Limit    int
}

func parseAuditFilter(v url.Values) (auditFilter, error) {
	fields := map[string]string{}
	f := auditFilter{Action: strings.TrimSpace(v.Get("action")), Limit: defaultPageSize,
		UserID: uuidParam(v, "user_id", fields), TicketID: uuidParam(v, "ticket_id", fields),
		From: timeParam(v, "from", fields), To: timeParam(v, "to", fields)}
	if len(f.Action) > 100 {
		fields["action"] = "must be at most 100 characters"
	}
	if f.From != nil && f.To != nil && !f.From.Before(*f.To) {
		fields["to"] = "must be after from"
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			fields["limit"] = "must be 1.." + strconv.Itoa(maxPageSize)
		}
		f.Limit = n
	}
	if s := v.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			fields["after"] = "must be a cursor returned as next_cursor"
		}
		f.After = n
	}
	return f, apperr.Fields(fields)
}

// auditQuery is the organisation's audit rows matching f, newest first.
func (s *Server) auditQuery(r *http.Request, p *Principal, f auditFilter) *gorm.DB {
	q := s.db.WithContext(r.Context()).Table("audit_log").Where("audit_log.org_id = ?", p.OrgID)
	if prefix, ok := strings.CutSuffix(f.Action, ".*"); ok {
		q = q.Where("audit_log.action LIKE ?", escapeLike(prefix)+".%")
	} else if f.Action != "" {
		q = q.Where("audit_log.action = ?", f.Action)
	}
	if f.UserID != nil {
		q = q.Where("audit_log.user_id = ?", *f.UserID)
	}
	if f.TicketID != nil {
		q = q.Where("audit_log.ticket_id = ?", *f.TicketID)
	}
	if f.From != nil {
		q = q.Where("audit_log.created_at >= ?", *f.From)
	}
	if f.To != nil {
		q = q.Where("audit_log.created_at < ?", *f.To)
	}
	if f.After > 0 {
		q = q.Where("audit_log.id < ?", f.After)
	}
	return q.Order("audit_log.id DESC")
}

func (s *Server) writeAuditPage(w http.ResponseWriter, r *http.Request, p *Principal, f auditFilter) {
	var rows []auditView
	if err := s.auditQuery(r, p, f).Select(auditColumns).Limit(f.Limit + 1).Scan(&rows).Error; err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	res := pageResult[auditView]{Items: rows}
	if len(rows) > f.Limit {
		res.Items = rows[:f.Limit]
		res.NextCursor = strconv.FormatInt(rows[f.Limit-1].ID, 10)
	}
	if res.Items == nil {
		res.Items = []auditView{}
	}
	if !auth.Can(p.Role, auth.AuditRead) {
		for i := range res.Items {
			res.Items[i].IP, res.Items[i].UserAgent = nil, nil
		}
	}
	writeJSON(w, http.StatusOK, res)
}

// handleListAudit is the organisation's audit log with filters.
func (s *Server) handleListAudit(w http.ResponseWriter, r *http.Request) {
	f, err := parseAuditFilter(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeAuditPage(w, r, mustPrincipal(r), f)
}

// handleTicketAudit is one ticket's history, for staff.
func (s *Server) handleTicketAudit(w http.ResponseWriter, r *http.Request) {
	t, err := s.pathTicket(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v := r.URL.Query()
	v.Del("ticket_id")
	f, err := parseAuditFilter(v)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f.TicketID = &t.ID
	s.writeAuditPage(w, r, mustPrincipal(r), f)
}

// auditCSVHeader is the export's header row.
var auditCSVHeader = []string{"id", "created_at", "actor_kind", "user_id", "user_email", "action", "entity_type", "entity_id",
	"ticket_id", "before", "after", "ip", "user_agent", "request_id"}

// handleExportAudit streams the filtered log as RFC 4180 CSV (CRLF, quoted
// as needed), row by row from a database cursor, so its size is not bound
// by memory. Every cell is neutralised against formula injection. The
// export itself is audited.
func (s *Server) handleExportAudit(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	f, err := parseAuditFilter(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f.After = 0 // an export is everything that matches
	filters := map[string]any{"action": f.Action, "user_id": f.UserID, "ticket_id": f.TicketID, "from": f.From, "to": f.To}
	if err := audit.Write(r.Context(), s.db, s.auditEntry(r, p, "audit.exported", "audit_log", p.OrgID, nil, filters)); err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	rows, err := s.auditQuery(r, p, f).
		Select(auditColumns + ", u.email AS user_email").
		Joins("LEFT JOIN users u ON u.org_id = audit_log.org_id AND u.id = audit_log.user_id").Rows()
	if err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	defer rows.Close()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8; header=present")
	w.Header().Set("Content-Disposition", `attachment; filename="audit-`+time.Now().UTC().Format("20060102T150405Z")+`.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	_ = cw.Write(auditCSVHeader)
	for n := 1; rows.Next(); n++ {
		var a auditView
		var email *string
		err := rows.Scan(&a.ID, &a.TicketID, &a.UserID, &a.ActorKind, &a.Action, &a.EntityType, &a.EntityID,
			&a.Before, &a.After, &a.IP, &a.UserAgent, &a.RequestID, &a.CreatedAt, &email)
		if err != nil {
			s.abortStream(r, err)
		}
		rec := []string{strconv.FormatInt(a.ID, 10), a.CreatedAt.UTC().Format(time.RFC3339Nano), string(a.ActorKind),
			uuidCell(a.UserID), strCell(email), a.Action, a.EntityType, uuidCell(a.EntityID), uuidCell(a.TicketID),
			string(a.Before), string(a.After), strCell(a.IP), strCell(a.UserAgent), strCell(a.RequestID)}
		for i := range rec {
			rec[i] = neutraliseCell(rec[i])
		}
		if err := cw.Write(rec); err != nil {
			s.abortStream(r, err)
		}
		if n%500 == 0 {
			cw.Flush()
		}
	}
	if err := rows.Err(); err != nil {
		s.abortStream(r, err)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		s.abortStream(r, err)
	}
}

// abortStream ends a streamed response that failed half-way: the
// connection is cut (no final chunk), so the client sees an error instead
// of a silently truncated file.
func (s *Server) abortStream(r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "stream aborted", "path", r.URL.Path, "err", err)
	panic(http.ErrAbortHandler)
}

// neutraliseCell defuses spreadsheet formula injection (CWE-1236, OWASP):
// a cell whose first character — after any leading spaces or quote
// characters, which spreadsheets skip — is = + - @ TAB or CR is prefixed
// with a single quote, which makes spreadsheets treat it as text.
func neutraliseCell(v string) string {
	rest := strings.TrimLeftFunc(v, func(r rune) bool {
		return r == '"' || r == '\'' || (unicode.IsSpace(r) && r != '\t' && r != '\r')
	})
	if rest != "" && strings.ContainsRune("=+-@\t\r", rune(rest[0])) {
		return "'" + v
	}
	return v
}

func uuidCell(id *uuid.UUID) string {
	if id == nil {
		return ""
	}
	return id.String()
}

func strCell(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
