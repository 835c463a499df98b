package httpapi

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/auth"
	"github.com/atumdesk/atumdesk/internal/database"
)

// Canned responses are reusable replies for staff. A response is personal
// (only its author sees it) unless shared, when every agent of the
// organisation sees it. Authors change their own; managers and admins
// share responses and change shared ones. Another user's personal response
// is not found (404), like another organisation's.

// cannedView is a canned response as the API shows it to the caller.
type cannedView struct {
	ID            uuid.UUID  `json:"id"`
	OrgID         uuid.UUID  `json:"org_id"`
	Title         string     `json:"title"`
	Content       string     `json:"content"`
	IsShared      bool       `json:"is_shared"`
	CreatedBy     *uuid.UUID `json:"created_by"`
	CreatedByName *string    `json:"created_by_name"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	// CanEdit: the caller may change or delete it.
	CanEdit bool `json:"can_edit" gorm:"-"`
}

const cannedColumns = `c.id, c.org_id, c.title, c.content, c.is_shared, c.created_by, u.name AS created_by_name,
	c.created_at, c.updated_at`

// Limits on a canned response's fields.
const (
	maxCannedTitle   = 200
	maxCannedContent = 20000
)

var errCannedNotFound = apperr.New(apperr.NotFound, "Canned response not found.")

// cannedRequest is the body of create (title and content required) and of
// update (every field optional).
type cannedRequest struct {
	Title    *string `json:"title"`
	Content  *string `json:"content"`
	IsShared *bool   `json:"is_shared"`
}

func (req *cannedRequest) check(create bool) (map[string]any, error) {
	fields := map[string]string{}
	ch := map[string]any{}
	if req.Title != nil || create {
		t := ""
		if req.Title != nil {
			t = strings.TrimSpace(*req.Title)
		}
		if t == "" || utf8.RuneCountInString(t) > maxCannedTitle || !utf8.ValidString(t) {
			fields["title"] = "is required, at most 200 characters"
		}
		ch["title"] = t
	}
	if req.Content != nil || create {
		c := ""
		if req.Content != nil {
			c = strings.TrimSpace(*req.Content)
		}
		if c == "" || utf8.RuneCountInString(c) > maxCannedContent || !utf8.ValidString(c) || strings.ContainsRune(c, 0) {
			fields["content"] = "is required, at most 20000 characters of text"
		}
		ch["content"] = c
	}
	if req.IsShared != nil {
		ch["is_shared"] = *req.IsShared
	}
	return ch, apperr.Fields(fields)
}

// cannedQuery selects the canned responses p may see: the shared ones and
// p's own.
func cannedQuery(ctx context.Context, db *gorm.DB, p *Principal) *gorm.DB {
	return db.WithContext(ctx).Table("canned_responses c").Select(cannedColumns).
		Joins("LEFT JOIN users u ON u.id = c.created_by AND u.org_id = c.org_id").
		Where("c.org_id = ? AND (c.is_shared OR c.created_by = ?)", p.OrgID, p.UserID)
}

// canEditCanned: authors change their own responses; managers and admins
// also the shared ones.
func canEditCanned(p *Principal, c *cannedView) bool {
	mine := c.CreatedBy != nil && *c.CreatedBy == p.UserID
	return mine || (c.IsShared && auth.Can(p.Role, auth.CannedShare))
}

var (
	errCannedNotEditable = apperr.New(apperr.Forbidden, "Only its author, or a manager or admin for a shared response, may change this canned response.")
	errCannedShare       = apperr.New(apperr.Forbidden, "Only managers and admins share or unshare canned responses.")
)

// lockCanned locks the canned response row read (not its author's).
var lockCanned = clause.Locking{Strength: "UPDATE", Table: clause.Table{Name: "c"}}

func findCanned(ctx context.Context, db *gorm.DB, p *Principal, raw string) (*cannedView, error) {
	id, err := uuid.Parse(raw)
	if err != nil {
		return nil, errCannedNotFound
	}
	var c cannedView
	if err := cannedQuery(ctx, db, p).Where("c.id = ?", id).Take(&c).Error; err != nil {
		return nil, notFoundIfMissing(err, "Canned response")
	}
	c.CanEdit = canEditCanned(p, &c)
	return &c, nil
}

// handleListCannedResponses lists the caller's own and the shared canned
// responses by title. ?q= matches title or content (case-insensitive
// substring); ?scope=mine|shared narrows them.
func (s *Server) handleListCannedResponses(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	v := r.URL.Query()
	pg, err := parsePage(v)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	fields := map[string]string{}
	q := cannedQuery(r.Context(), s.db, p)
	switch v.Get("scope") {
	case "", "all":
	case "mine":
		q = q.Where("c.created_by = ?", p.UserID)
	case "shared":
		q = q.Where("c.is_shared")
	default:
		fields["scope"] = "must be all, mine or shared"
	}
	if text := strings.TrimSpace(v.Get("q")); text != "" {
		if utf8.RuneCountInString(text) > 200 || !utf8.ValidString(text) || strings.ContainsRune(text, 0) {
			fields["q"] = "must be at most 200 characters of text"
		}
		like := "%" + escapeLike(text) + "%"
		q = q.Where("(c.title ILIKE ? OR c.content ILIKE ?)", like, like)
	}
	if err := apperr.Fields(fields); err != nil {
		s.writeError(w, r, err)
		return
	}
	if pg.After != uuid.Nil {
		// Keyset on (title, id): the cursor is the last id seen.
		q = q.Where("(c.title, c.id) > (SELECT title, id FROM canned_responses WHERE id = ? AND org_id = ?)", pg.After, p.OrgID)
	}
	var rows []cannedView
	if err := q.Order("c.title, c.id").Limit(pg.Limit + 1).Find(&rows).Error; err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	for i := range rows {
		rows[i].CanEdit = canEditCanned(p, &rows[i])
	}
	writeJSON(w, http.StatusOK, pageOf(rows, pg.Limit, func(c cannedView) uuid.UUID { return c.ID }))
}

func (s *Server) handleGetCannedResponse(w http.ResponseWriter, r *http.Request) {
	c, err := findCanned(r.Context(), s.db, mustPrincipal(r), chi.URLParam(r, "cannedID"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) handleCreateCannedResponse(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var req cannedRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	ch, err := req.check(true)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.IsShared != nil && *req.IsShared && !auth.Can(p.Role, auth.CannedShare) {
		s.writeError(w, r, errCannedShare)
		return
	}
	id := uuid.Must(uuid.NewV7())
	ch["id"], ch["org_id"], ch["created_by"] = id, p.OrgID, p.UserID
	var out *cannedView
	err = s.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		if err := tx.Table("canned_responses").Create(ch).Error; err != nil {
			return err
		}
		var err error
		if out, err = findCanned(r.Context(), tx, p, id.String()); err != nil {
			return err
		}
		return audit.Write(r.Context(), tx, s.auditEntry(r, p, "canned_response.created", "canned_response", id, nil, out))
	})
	if err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	w.Header().Set("Location", "/api/v1/canned-responses/"+id.String())
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) handlePatchCannedResponse(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var req cannedRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	ch, err := req.check(false)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var out *cannedView
	err = s.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		cur, err := findCanned(r.Context(), tx.Clauses(lockCanned), p, chi.URLParam(r, "cannedID"))
		if err != nil {
			return err
		}
		if !cur.CanEdit {
			return errCannedNotEditable
		}
		if req.IsShared != nil && *req.IsShared != cur.IsShared && !auth.Can(p.Role, auth.CannedShare) {
			return errCannedShare
		}
		if len(ch) == 0 {
			out = cur
			return nil
		}
		if err := tx.Table("canned_responses").Where("id = ? AND org_id = ?", cur.ID, p.OrgID).Updates(ch).Error; err != nil {
			return err
		}
		if out, err = findCanned(r.Context(), tx, p, cur.ID.String()); err != nil {
			return err
		}
		return audit.Write(r.Context(), tx, s.auditEntry(r, p, "canned_response.updated", "canned_response", cur.ID, cur, out))
	})
	if err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleDeleteCannedResponse(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	err := s.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		cur, err := findCanned(r.Context(), tx.Clauses(lockCanned), p, chi.URLParam(r, "cannedID"))
		if err != nil {
			return err
		}
		if !cur.CanEdit {
			return errCannedNotEditable
		}
		if err := tx.Exec(`DELETE FROM canned_responses WHERE id = ? AND org_id = ?`, cur.ID, p.OrgID).Error; err != nil {
			return err
		}
		return audit.Write(r.Context(), tx, s.auditEntry(r, p, "canned_response.deleted", "canned_response", cur.ID, cur, nil))
	})
	if err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// placeholderRE matches {{ name }} placeholders in canned content.
var placeholderRE = regexp.MustCompile(`\{\{\s*([a-z_]+\.[a-z_]+)\s*\}\}`)

// renderCanned substitutes the placeholders vars has values for; others
// stay as written, so the agent sees what was not filled in.
func renderCanned(content string, vars map[string]string) string {
	return placeholderRE.ReplaceAllStringFunc(content, func(m string) string {
		if v, ok := vars[placeholderRE.FindStringSubmatch(m)[1]]; ok {
			return v
		}
		return m
	})
}

// handleRenderCannedResponse fills a canned response in for a reply:
// {{agent.name}} is the caller; with ?ticket_id= also {{ticket.number}},
// {{ticket.subject}} and {{requester.name}} (the requester's e-mail when
// they have no name).
func (s *Server) handleRenderCannedResponse(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	fields := map[string]string{}
	ticketID := uuidParam(r.URL.Query(), "ticket_id", fields)
	if err := apperr.Fields(fields); err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := findCanned(r.Context(), s.db, p, chi.URLParam(r, "cannedID"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	vars := map[string]string{}
	var agent string
	if err := s.db.WithContext(r.Context()).Raw(`SELECT coalesce(nullif(name, ''), email) FROM users WHERE id = ? AND org_id = ?`,
		p.UserID, p.OrgID).Row().Scan(&agent); err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	vars["agent.name"] = agent
	if ticketID != nil {
		var t struct {
			Number    int64
			Subject   string
			Requester string
		}
		err := s.db.WithContext(r.Context()).Raw(`SELECT t.number, t.subject, coalesce(nullif(u.name, ''), u.email) AS requester
			FROM tickets t JOIN users u ON u.id = t.requester_id AND u.org_id = t.org_id
			WHERE t.id = ? AND t.org_id = ?`, *ticketID, p.OrgID).Take(&t).Error
		if err != nil {
			s.writeError(w, r, notFoundIfMissing(err, "Ticket"))
			return
		}
		vars["ticket.number"], vars["ticket.subject"], vars["requester.name"] = strconv.FormatInt(t.Number, 10), t.Subject, t.Requester
	}
	writeJSON(w, http.StatusOK, map[string]string{"content": renderCanned(c.Content, vars)})
}
