// Package session signs users in and out: password login with lockout,
// access tokens, and refresh-token rotation with reuse detection.
package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/auth"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/ratelimit"
	"github.com/atumdesk/atumdesk/models"
)

// Config tunes the service.
type Config struct {
	RefreshTTL  time.Duration
	MaxFailures int           // login attempts per window, per IP and per account
	Window      time.Duration // lockout window
}

// Service is the session service.
type Service struct {
	db     *gorm.DB
	rdb    *redis.Client
	tokens *auth.Tokens
	cfg    Config
	now    func() time.Time
}

// New returns a session service.
func New(db *gorm.DB, rdb *redis.Client, tokens *auth.Tokens, cfg Config) *Service {
	return &Service{db: db, rdb: rdb, tokens: tokens, cfg: cfg, now: time.Now}
}

// TokenPair is the OAuth 2 token-response shape (RFC 6749 §5.1).
type TokenPair struct {
	AccessToken  string        `json:"access_token"`
	TokenType    string        `json:"token_type"`
	ExpiresIn    int           `json:"expires_in"`
	RefreshToken string        `json:"refresh_token"`
	RefreshTTL   time.Duration `json:"-"`
}

// Client describes where a request came from, for audit and lockout.
type Client struct {
	IP        string
	UserAgent string
	RequestID string
}

var errBadCredentials = apperr.New(apperr.Unauthorized, "Invalid e-mail address or password.")

// Login checks credentials. Unknown account and wrong password give the same
// error after the same work (one argon2id comparison). Each attempt is
// counted before the password is checked, atomically in Redis, so parallel
// guesses cannot exceed the limit.
func (s *Service) Login(ctx context.Context, email, password, orgSlug string, c Client) (*TokenPair, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if err := s.countAttempt(ctx, email, c.IP); err != nil {
		return nil, err
	}
	var candidates []models.User
	q := s.db.WithContext(ctx).Where("lower(email) = ? AND is_active", email)
	if orgSlug != "" {
		q = q.Where("org_id = (SELECT id FROM organizations WHERE slug = ? AND is_active)", strings.ToLower(orgSlug))
	} else {
		q = q.Where("org_id IN (SELECT id FROM organizations WHERE is_active)")
	}
	if err := q.Limit(20).Find(&candidates).Error; err != nil {
		return nil, database.Classify(err)
	}
	var user *models.User
	if len(candidates) == 0 {
		auth.SpendPasswordTime(password)
	}
	for i := range candidates {
		if auth.CheckPassword(password, deref(candidates[i].PasswordHash)) {
			if user != nil { // same e-mail and password in two organisations: ask for the organisation
				return nil, &apperr.Error{Kind: apperr.Invalid, Msg: "This e-mail address belongs to several organisations.",
					Fields: map[string]string{"organization": "required: the slug of your organisation"}}
			}
			user = &candidates[i]
		}
	}
	if user == nil {
		var orgID *uuid.UUID
		if len(candidates) == 1 {
			orgID = &candidates[0].OrgID
			_ = audit.Write(ctx, s.db, audit.Entry{OrgID: orgID, UserID: &candidates[0].ID, Action: "auth.login_failed",
				EntityType: "user", EntityID: &candidates[0].ID, IP: c.IP, UserAgent: c.UserAgent, RequestID: c.RequestID})
		}
		return nil, errBadCredentials
	}
	s.clearAttempts(ctx, email, c.IP)
	var pair *TokenPair
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		pair, err = s.issue(tx, user, uuid.Nil, c)
		if err != nil {
			return err
		}
		if err := tx.Model(&models.User{}).Where("id = ?", user.ID).Update("last_login_at", s.now().UTC()).Error; err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{OrgID: &user.OrgID, UserID: &user.ID, Action: "auth.login",
			EntityType: "user", EntityID: &user.ID, IP: c.IP, UserAgent: c.UserAgent, RequestID: c.RequestID})
	})
	if err != nil {
		return nil, database.Classify(err)
	}
	return pair, nil
}

// issue creates an access token and a refresh token in family (a new family
// when family is Nil).
func (s *Service) issue(tx *gorm.DB, u *models.User, family uuid.UUID, c Client) (*TokenPair, error) {
	access, err := s.tokens.Issue(u.ID, u.OrgID, string(u.Role))
	if err != nil {
		return nil, err
	}
	raw, hash, err := auth.NewOpaqueToken()
	if err != nil {
		return nil, err
	}
	if family == uuid.Nil {
		family = uuid.Must(uuid.NewV7())
	}
	rt := models.RefreshToken{
		ID: uuid.Must(uuid.NewV7()), UserID: u.ID, OrgID: u.OrgID, FamilyID: family, TokenHash: hash,
		ExpiresAt: s.now().UTC().Add(s.cfg.RefreshTTL), IP: ptr(c.IP), UserAgent: ptr(truncate(c.UserAgent, 512)),
	}
	if err := tx.Create(&rt).Error; err != nil {
		return nil, fmt.Errorf("session: store refresh token: %w", err)
	}
	return &TokenPair{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(s.tokens.TTL().Seconds()),
		RefreshToken: raw, RefreshTTL: s.cfg.RefreshTTL}, nil
}

var errBadRefresh = apperr.New(apperr.Unauthorized, "The refresh token is invalid, expired or revoked.")

// Refresh rotates a refresh token: the presented one is marked used and a
// new one of the same family is returned. Presenting a token that was
// already used revokes its whole family (it was stolen or replayed).
func (s *Service) Refresh(ctx context.Context, raw string, c Client) (*TokenPair, error) {
	if raw == "" {
		return nil, errBadRefresh
	}
	var pair *TokenPair
	var reused bool
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rt models.RefreshToken
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("token_hash = ?", auth.HashOpaqueToken(raw)).Take(&rt).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return errBadRefresh
		}
		if err != nil {
			return err
		}
		now := s.now().UTC()
		switch {
		case rt.RevokedAt != nil:
			return errBadRefresh
		case rt.UsedAt != nil:
			reused = true
			if err := tx.Model(&models.RefreshToken{}).Where("family_id = ? AND revoked_at IS NULL", rt.FamilyID).
				Update("revoked_at", now).Error; err != nil {
				return err
			}
			return audit.Write(ctx, tx, audit.Entry{OrgID: &rt.OrgID, UserID: &rt.UserID, Action: "auth.refresh_reuse",
				EntityType: "user", EntityID: &rt.UserID, IP: c.IP, UserAgent: c.UserAgent, RequestID: c.RequestID})
		case !rt.ExpiresAt.After(now):
			return errBadRefresh
		}
		var u models.User
		err = tx.Where("id = ? AND is_active", rt.UserID).
			Where("org_id IN (SELECT id FROM organizations WHERE is_active)").Take(&u).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return errBadRefresh
		}
		if err != nil {
			return err
		}
		pair, err = s.issue(tx, &u, rt.FamilyID, c)
		if err != nil {
			return err
		}
		return tx.Model(&models.RefreshToken{}).Where("id = ?", rt.ID).Update("used_at", now).Error
	})
	if reused && err == nil {
		return nil, errBadRefresh
	}
	if err != nil {
		return nil, database.Classify(err)
	}
	return pair, nil
}

// Logout revokes the refresh token's family. Unknown tokens are ignored:
// logging out is idempotent.
func (s *Service) Logout(ctx context.Context, raw string) error {
	if raw == "" {
		return nil
	}
	err := s.db.WithContext(ctx).Exec(`UPDATE refresh_tokens SET revoked_at = now()
		WHERE revoked_at IS NULL AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = ?)`,
		auth.HashOpaqueToken(raw)).Error
	return database.Classify(err)
}

// ChangePassword verifies the current password, stores the new one and
// revokes every refresh token of the user (other sessions end).
func (s *Service) ChangePassword(ctx context.Context, userID uuid.UUID, current, next string, c Client) error {
	if reason := auth.ValidatePassword(next); reason != "" {
		return apperr.Fields(map[string]string{"new_password": reason})
	}
	var u models.User
	if err := s.db.WithContext(ctx).Where("id = ?", userID).Take(&u).Error; err != nil {
		return database.Classify(err)
	}
	if !auth.CheckPassword(current, deref(u.PasswordHash)) {
		return &apperr.Error{Kind: apperr.Invalid, Msg: "The current password is wrong.",
			Fields: map[string]string{"current_password": "is wrong"}}
	}
	hash, err := auth.HashPassword(next)
	if err != nil {
		return err
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := s.now().UTC()
		if err := tx.Model(&models.User{}).Where("id = ?", u.ID).
			Updates(map[string]any{"password_hash": hash, "password_changed_at": now}).Error; err != nil {
			return err
		}
		if err := tx.Model(&models.RefreshToken{}).Where("user_id = ? AND revoked_at IS NULL", u.ID).
			Update("revoked_at", now).Error; err != nil {
			return err
		}
		return audit.Write(ctx, tx, audit.Entry{OrgID: &u.OrgID, UserID: &u.ID, Action: "auth.password_changed",
			EntityType: "user", EntityID: &u.ID, IP: c.IP, UserAgent: c.UserAgent, RequestID: c.RequestID})
	})
	return database.Classify(err)
}

// countAttempt reserves one login attempt for the account and the IP and
// refuses when either exceeds the limit within the window.
func (s *Service) countAttempt(ctx context.Context, email, ip string) error {
	keys := []string{"login:acct:" + email}
	if ip != "" {
		keys = append(keys, "login:ip:"+ip)
	}
	var worst time.Duration
	for _, k := range keys {
		ok, retry, err := ratelimit.Allow(ctx, s.rdb, k, s.cfg.MaxFailures, s.cfg.Window)
		if err != nil {
			return apperr.Wrap(apperr.Unavailable, "Sign-in is temporarily unavailable; retry shortly.", err)
		}
		if !ok && retry > worst {
			worst = retry
		}
	}
	if worst > 0 {
		return &apperr.Error{Kind: apperr.RateLimited, Msg: "Too many sign-in attempts; try again later.", RetryAfter: worst}
	}
	return nil
}

// clearAttempts forgets the account's failures after a success and gives
// back the IP's reserved attempt, so only failures count against an IP (an
// office behind one address can keep signing in).
func (s *Service) clearAttempts(ctx context.Context, email, ip string) {
	ratelimit.Reset(ctx, s.rdb, "login:acct:"+email)
	if ip != "" {
		ratelimit.Undo(ctx, s.rdb, "login:ip:"+ip)
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
