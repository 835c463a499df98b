package httpapi

import (
	"context"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/auth"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/models"
)

// userView is a user as the API shows it: never the password hash or the
// TOTP secret.
type userView struct {
	ID          uuid.UUID   `json:"id"`
	OrgID       uuid.UUID   `json:"org_id"`
	Email       string      `json:"email"`
	Name        string      `json:"name"`
	Role        models.Role `json:"role"`
	IsActive    bool        `json:"is_active"`
	TOTPEnabled bool        `json:"totp_enabled"`
	Timezone    *string     `json:"timezone"`
	Locale      *string     `json:"locale"`
	LastLoginAt *time.Time  `json:"last_login_at"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
}

const userColumns = "id, org_id, email, name, role, is_active, totp_enabled, timezone, locale, last_login_at, created_at, updated_at"

// usersVisibleTo scopes a users query to what p may see: their organisation,
// and for customers only customer accounts.
func (s *Server) usersVisibleTo(ctx context.Context, p *Principal) *gorm.DB {
	q := s.db.WithContext(ctx).Table("users").Select(userColumns).Where("org_id = ?", p.OrgID)
	if !p.IsStaff() {
		q = q.Where("role IN ?", []models.Role{models.RoleCustomerUser, models.RoleCustomerAdmin})
	}
	return q
}

func (s *Server) findUser(ctx context.Context, p *Principal, id string) (*userView, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil, apperr.New(apperr.NotFound, "User not found.")
	}
	var u userView
	if err := s.usersVisibleTo(ctx, p).Where("id = ?", uid).Take(&u).Error; err != nil {
		return nil, notFoundIfMissing(err, "User")
	}
	return &u, nil
}

func (s *Server) handleGetMe(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var u userView
	if err := s.db.WithContext(r.Context()).Table("users").Select(userColumns).Where("id = ?", p.UserID).Take(&u).Error; err != nil {
		s.writeError(w, r, notFoundIfMissing(err, "User"))
		return
	}
	writeJSON(w, http.StatusOK, u)
}

type putMeRequest struct {
	Name     string  `json:"name"`
	Timezone *string `json:"timezone"`
	Locale   *string `json:"locale"`
}

func (s *Server) handlePutMe(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var req putMeRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	fields := map[string]string{}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 200 {
		fields["name"] = "is required, at most 200 characters"
	}
	if req.Timezone != nil && !validZone(*req.Timezone) {
		fields["timezone"] = "must be an IANA time zone such as Europe/Berlin"
	}
	if req.Locale != nil && (len(*req.Locale) < 2 || len(*req.Locale) > 16) {
		fields["locale"] = "must be a language tag such as en or de-CH"
	}
	if err := apperr.Fields(fields); err != nil {
		s.writeError(w, r, err)
		return
	}
	err := s.db.WithContext(r.Context()).Table("users").Where("id = ?", p.UserID).
		Updates(map[string]any{"name": req.Name, "timezone": req.Timezone, "locale": req.Locale, "updated_at": time.Now().UTC()}).Error
	if err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	s.handleGetMe(w, r)
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	q := s.usersVisibleTo(r.Context(), p)
	v := r.URL.Query()
	fields := map[string]string{}
	if role := v.Get("role"); role != "" {
		if !models.Role(role).Valid() {
			fields["role"] = "unknown role"
		}
		q = q.Where("role = ?", role)
	}
	if active := v.Get("is_active"); active != "" {
		b, err := strconv.ParseBool(active)
		if err != nil {
			fields["is_active"] = "must be true or false"
		}
		q = q.Where("is_active = ?", b)
	}
	if term := strings.TrimSpace(v.Get("q")); term != "" {
		like := "%" + escapeLike(strings.ToLower(term)) + "%"
		q = q.Where("(lower(email) LIKE ? OR lower(name) LIKE ?)", like, like)
	}
	page, err := parsePage(v)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := apperr.Fields(fields); err != nil {
		s.writeError(w, r, err)
		return
	}
	if page.After != uuid.Nil {
		q = q.Where("id > ?", page.After)
	}
	var users []userView
	if err := q.Order("id").Limit(page.Limit + 1).Find(&users).Error; err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	writeJSON(w, http.StatusOK, pageOf(users, page.Limit, func(u userView) uuid.UUID { return u.ID }))
}

func (s *Server) handleGetUser(w http.ResponseWriter, r *http.Request) {
	u, err := s.findUser(r.Context(), mustPrincipal(r), chi.URLParam(r, "userID"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

type createUserRequest struct {
	Email    string      `json:"email"`
	Name     string      `json:"name"`
	Role     models.Role `json:"role"`
	Password string      `json:"password,omitempty"`
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var req createUserRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	fields := map[string]string{}
	email, ok := normaliseEmail(req.Email)
	if !ok {
		fields["email"] = "must be a valid e-mail address"
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 200 {
		fields["name"] = "is required, at most 200 characters"
	}
	if !req.Role.Valid() {
		fields["role"] = roleChoices
	}
	var hash *string
	if req.Password != "" {
		if reason := auth.ValidatePassword(req.Password); reason != "" {
			fields["password"] = reason
		}
	}
	if err := apperr.Fields(fields); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !auth.CanGrant(p.Role, req.Role) {
		s.writeError(w, r, apperr.New(apperr.Forbidden, "You may only create users with a role below your own."))
		return
	}
	if req.Password != "" {
		h, err := auth.HashPassword(req.Password)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		hash = &h
	}
	id := uuid.Must(uuid.NewV7())
	err := s.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO users (id, org_id, email, name, role, password_hash, is_active) VALUES (?, ?, ?, ?, ?, ?, true)`,
			id, p.OrgID, email, req.Name, req.Role, hash).Error; err != nil {
			if database.SQLState(err) == "23505" {
				return &apperr.Error{Kind: apperr.Conflict, Msg: "A user with this e-mail address already exists.",
					Fields: map[string]string{"email": "is taken"}, Err: err}
			}
			return err
		}
		return audit.Write(r.Context(), tx, s.auditEntry(r, p, "user.created", "user", id, nil,
			map[string]any{"email": email, "name": req.Name, "role": req.Role}))
	})
	if err != nil {
		s.writeError(w, r, database.Classify(err))
		return
	}
	u, err := s.findUser(r.Context(), p, id.String())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/users/"+id.String())
	writeJSON(w, http.StatusCreated, u)
}

type patchUserRequest struct {
	Name     *string      `json:"name"`
	Role     *models.Role `json:"role"`
	IsActive *bool        `json:"is_active"`
}

// manageable loads a user p may change: visible to p, not p themself for
// role and activation changes, and ranked strictly below p.
func (s *Server) manageable(r *http.Request, p *Principal) (*userView, error) {
	u, err := s.findUser(r.Context(), p, chi.URLParam(r, "userID"))
	if err != nil {
		return nil, err
	}
	if u.ID == p.UserID {
		return nil, apperr.New(apperr.Forbidden, "You cannot change your own role or status; use /api/v1/me.")
	}
	if !auth.CanGrant(p.Role, u.Role) {
		return nil, apperr.New(apperr.Forbidden, "You may only manage users with a role below your own.")
	}
	return u, nil
}

func (s *Server) handlePatchUser(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var req patchUserRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.manageable(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	fields := map[string]string{}
	changes := map[string]any{}
	before := map[string]any{}
	if req.Name != nil {
		n := strings.TrimSpace(*req.Name)
		if n == "" || len(n) > 200 {
			fields["name"] = "is required, at most 200 characters"
		}
		changes["name"], before["name"] = n, u.Name
	}
	if req.Role != nil {
		if !req.Role.Valid() {
			fields["role"] = roleChoices
		} else if !auth.CanGrant(p.Role, *req.Role) {
			s.writeError(w, r, apperr.New(apperr.Forbidden, "You may only grant roles below your own."))
			return
		}
		changes["role"], before["role"] = *req.Role, u.Role
	}
	if req.IsActive != nil {
		changes["is_active"], before["is_active"] = *req.IsActive, u.IsActive
	}
	if err := apperr.Fields(fields); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(changes) > 0 {
		if err := s.updateUser(r, p, u.ID, "user.updated", before, changes); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	s.handleGetUser(w, r)
}

// handleDeleteUser deactivates: users are referenced by tickets, comments
// and the audit log, so they are never removed.
func (s *Server) handleDeleteUser(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	u, err := s.manageable(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.updateUser(r, p, u.ID, "user.deactivated", map[string]any{"is_active": u.IsActive},
		map[string]any{"is_active": false}); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// updateUser applies changes, revokes sessions when the role or activation
// changed, and audits before/after, in one transaction.
func (s *Server) updateUser(r *http.Request, p *Principal, id uuid.UUID, action string, before, changes map[string]any) error {
	changes["updated_at"] = time.Now().UTC()
	err := s.db.WithContext(r.Context()).Transaction(func(tx *gorm.DB) error {
		if err := tx.Table("users").Where("id = ? AND org_id = ?", id, p.OrgID).Updates(changes).Error; err != nil {
			return err
		}
		_, roleChanged := changes["role"]
		if active, ok := changes["is_active"].(bool); roleChanged || (ok && !active) {
			if err := tx.Exec(`UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = ? AND revoked_at IS NULL`, id).Error; err != nil {
				return err
			}
		}
		delete(changes, "updated_at")
		return audit.Write(r.Context(), tx, s.auditEntry(r, p, action, "user", id, before, changes))
	})
	s.forgetPrincipal(id)
	return database.Classify(err)
}

func (s *Server) auditEntry(r *http.Request, p *Principal, action, entity string, id uuid.UUID, before, after any) audit.Entry {
	return audit.Entry{OrgID: &p.OrgID, UserID: &p.UserID, Action: action, EntityType: entity, EntityID: &id,
		Before: before, After: after, IP: clientIPFrom(r.Context()), UserAgent: r.UserAgent(), RequestID: requestIDFrom(r.Context())}
}

var roleChoices = "must be one of customer_user, customer_admin, agent, manager, admin"

func normaliseEmail(s string) (string, bool) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 320 || a.Name != "" {
		return "", false
	}
	return strings.ToLower(s), true
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func validZone(tz string) bool {
	if tz == "" || tz == "Local" {
		return false
	}
	_, err := time.LoadLocation(tz)
	return err == nil
}
