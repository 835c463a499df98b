// Package seed creates the demo tenants: organisations acme and globex, one
// user of each role in acme, a customer in globex, services, an SLA policy,
// and acme's knowledge base and canned responses. Running it again creates
// nothing twice.
package seed

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/auth"
	"github.com/atumdesk/atumdesk/models"
)

// Login is one demo account.
type Login struct {
	Org      string
	Email    string
	Role     models.Role
	Password string // "" when the existing password was kept
}

type demoOrg struct {
	slug, name, tz string
	users          []models.Role // roles; e-mail is <role>@<slug>.test
	services       []string
}

var demo = []demoOrg{
	{"acme", "Acme Corporation", "Europe/Berlin", models.Roles, []string{"IT Support", "Billing", "Access Requests"}},
	{"globex", "Globex Inc.", "America/New_York", []models.Role{models.RoleCustomerUser}, []string{"General Support"}},
}

// weekdays 09:00–17:00, the schedule format of the business-time package.
const businessHours = `{"mon":[["09:00","17:00"]],"tue":[["09:00","17:00"]],"wed":[["09:00","17:00"]],"thu":[["09:00","17:00"]],"fri":[["09:00","17:00"]]}`

// Demo seeds the demo data. With password empty, new users get a random
// password and existing users keep theirs; otherwise every demo user's
// password is (re)set to password.
func Demo(ctx context.Context, db *gorm.DB, password string) ([]Login, error) {
	if password != "" {
		if reason := auth.ValidatePassword(password); reason != "" {
			return nil, fmt.Errorf("seed: password %s", reason)
		}
	}
	var logins []Login
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, o := range demo {
			orgID, err := upsertOrg(tx, o)
			if err != nil {
				return err
			}
			for _, role := range o.users {
				l, err := upsertUser(tx, orgID, o.slug, role, password)
				if err != nil {
					return err
				}
				logins = append(logins, l)
			}
			for _, name := range o.services {
				if err := tx.Exec(`INSERT INTO services (id, org_id, name, description, is_active, default_priority)
					VALUES (?, ?, ?, '', true, 'medium') ON CONFLICT DO NOTHING`, uuid.Must(uuid.NewV7()), orgID, name).Error; err != nil {
					return fmt.Errorf("seed: service %s: %w", name, err)
				}
			}
			if err := upsertPolicy(tx, orgID, o.tz); err != nil {
				return err
			}
			if err := upsertCatalog(tx, orgID, o.slug); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return logins, nil
}

func upsertOrg(tx *gorm.DB, o demoOrg) (uuid.UUID, error) {
	formKey, err := randomString(18)
	if err != nil {
		return uuid.Nil, err
	}
	err = tx.Exec(`INSERT INTO organizations (id, slug, name, timezone, business_hours, holidays, settings, form_key, is_active)
		VALUES (?, ?, ?, ?, ?::jsonb, '[]'::jsonb, '{}'::jsonb, ?, true) ON CONFLICT (slug) DO NOTHING`,
		uuid.Must(uuid.NewV7()), o.slug, o.name, o.tz, businessHours, formKey).Error
	if err != nil {
		return uuid.Nil, fmt.Errorf("seed: organization %s: %w", o.slug, err)
	}
	var id uuid.UUID
	if err := tx.Raw(`SELECT id FROM organizations WHERE slug = ?`, o.slug).Row().Scan(&id); err != nil {
		return uuid.Nil, fmt.Errorf("seed: organization %s: %w", o.slug, err)
	}
	return id, nil
}

func upsertUser(tx *gorm.DB, orgID uuid.UUID, slug string, role models.Role, password string) (Login, error) {
	email := string(role) + "@" + slug + ".test"
	l := Login{Org: slug, Email: email, Role: role}
	var existing uuid.UUID
	err := tx.Raw(`SELECT id FROM users WHERE org_id = ? AND lower(email) = ?`, orgID, email).Row().Scan(&existing)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("seed: user %s: %w", email, err)
	}
	if existing != uuid.Nil && password == "" {
		return l, nil // keep the password already given out
	}
	pw := password
	var hash string
	if pw == "" {
		if pw, err = randomString(12); err != nil {
			return l, err
		}
	}
	hash, err = auth.HashPassword(pw)
	if err != nil {
		return l, err
	}
	l.Password = pw
	if existing != uuid.Nil {
		err = tx.Exec(`UPDATE users SET password_hash = ?, is_active = true, password_changed_at = now() WHERE id = ?`, hash, existing).Error
	} else {
		err = tx.Exec(`INSERT INTO users (id, org_id, email, name, role, password_hash, is_active) VALUES (?, ?, ?, ?, ?, ?, true)`,
			uuid.Must(uuid.NewV7()), orgID, email, demoName(role, slug), role, hash).Error
	}
	if err != nil {
		return l, fmt.Errorf("seed: user %s: %w", email, err)
	}
	return l, nil
}

func upsertPolicy(tx *gorm.DB, orgID uuid.UUID, tz string) error {
	var n int64
	if err := tx.Raw(`SELECT count(*) FROM sla_policies WHERE org_id = ? AND name = 'Standard'`, orgID).Scan(&n).Error; err != nil {
		return fmt.Errorf("seed: sla policy: %w", err)
	}
	if n > 0 {
		return nil
	}
	id := uuid.Must(uuid.NewV7())
	err := tx.Exec(`INSERT INTO sla_policies (id, org_id, name, use_business_hours, business_hours, timezone, holidays,
		escalation_rules, clock_start, is_active)
		VALUES (?, ?, 'Standard', true, ?::jsonb, ?, '[]'::jsonb, ?::jsonb, 'accepted', true)`,
		id, orgID, businessHours, tz,
		`[{"at_percent":50,"notify":["manager"]},{"at_percent":80,"notify":["manager"]},{"at_percent":100,"notify":["manager","admin"]}]`).Error
	if err != nil {
		return fmt.Errorf("seed: sla policy: %w", err)
	}
	// first response / resolution in business minutes, per priority
	targets := []struct {
		p        string
		fr, reso int
	}{{"critical", 60, 240}, {"high", 120, 480}, {"medium", 240, 1440}, {"low", 480, 2880}}
	for _, t := range targets {
		if err := tx.Exec(`INSERT INTO sla_targets (policy_id, org_id, priority, first_response_minutes, resolution_minutes) VALUES (?, ?, ?, ?, ?)`,
			id, orgID, t.p, t.fr, t.reso).Error; err != nil {
			return fmt.Errorf("seed: sla target: %w", err)
		}
	}
	return nil
}

func demoName(role models.Role, slug string) string {
	names := map[models.Role]string{
		models.RoleCustomerUser: "Casey Customer", models.RoleCustomerAdmin: "Cameron Customer-Admin",
		models.RoleAgent: "Alex Agent", models.RoleManager: "Morgan Manager", models.RoleAdmin: "Ada Admin",
	}
	return names[role] + " (" + slug + ")"
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("seed: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)[:n+n/3], nil
}
