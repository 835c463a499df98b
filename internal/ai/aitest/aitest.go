// Package aitest builds the database fixtures the AI tests share: an
// organisation with staff, a customer and services, tickets with public
// replies and internal notes, KB articles and canned responses, and a
// history of resolved tickets to train on.
package aitest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

// Org is one organisation of the fixture.
type Org struct {
	t        testing.TB
	db       *gorm.DB
	ID       uuid.UUID
	Agent    uuid.UUID
	Customer uuid.UUID
	Services map[string]uuid.UUID // name → id
	number   int64
}

// NewOrg creates an organisation named slug with an agent, a customer and
// the services "Accounts", "Billing" and "Network".
func NewOrg(t testing.TB, db *gorm.DB, slug string) *Org {
	t.Helper()
	o := &Org{t: t, db: db, ID: uuid.Must(uuid.NewV7()), Agent: uuid.Must(uuid.NewV7()), Customer: uuid.Must(uuid.NewV7()),
		Services: map[string]uuid.UUID{}}
	slug = fmt.Sprintf("%s-%s", slug, o.ID.String()[:8])
	require.NoError(t, db.Exec(`INSERT INTO organizations (id, slug, name) VALUES (?, ?, ?)`, o.ID, slug, slug).Error)
	for id, role := range map[uuid.UUID]string{o.Agent: "agent", o.Customer: "customer_user"} {
		require.NoError(t, db.Exec(`INSERT INTO users (id, org_id, email, name, role, is_active) VALUES (?, ?, ?, ?, ?, true)`,
			id, o.ID, role+"-"+id.String()[:8]+"@"+slug+".test", role, role).Error)
	}
	for _, name := range []string{"Accounts", "Billing", "Network"} {
		id := uuid.Must(uuid.NewV7())
		require.NoError(t, db.Exec(`INSERT INTO services (id, org_id, name) VALUES (?, ?, ?)`, id, o.ID, name).Error)
		o.Services[name] = id
	}
	return o
}

// Settings sets the organisation's settings.ai.
func (o *Org) Settings(ai map[string]any) {
	o.t.Helper()
	b, err := json.Marshal(map[string]any{"ai": ai})
	require.NoError(o.t, err)
	require.NoError(o.t, o.db.Exec(`UPDATE organizations SET settings = ?::jsonb WHERE id = ?`, string(b), o.ID).Error)
}

// Ticket describes a ticket to insert.
type Ticket struct {
	Subject, Body string
	Status        string // default "new"
	Priority      string // default "medium"
	Service       string // a service name, or ""
	Category      string
}

// Ticket inserts a ticket requested by the customer and returns its id.
func (o *Org) Ticket(tk Ticket) uuid.UUID {
	o.t.Helper()
	o.number++
	id := uuid.Must(uuid.NewV7())
	if tk.Status == "" {
		tk.Status = "new"
	}
	if tk.Priority == "" {
		tk.Priority = "medium"
	}
	var svc *uuid.UUID
	if tk.Service != "" {
		s := o.Services[tk.Service]
		svc = &s
	}
	var cat *string
	if tk.Category != "" {
		cat = &tk.Category
	}
	var resolvedAt *time.Time
	if tk.Status == "resolved" || tk.Status == "closed" {
		now := time.Now()
		resolvedAt = &now
	}
	require.NoError(o.t, o.db.Exec(`INSERT INTO tickets (id, org_id, number, subject, description, status, priority,
		service_id, category, requester_id, channel, resolved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'api', ?)`,
		id, o.ID, o.number, tk.Subject, tk.Body, tk.Status, tk.Priority, svc, cat, o.Customer, resolvedAt).Error)
	return id
}

// Comment adds a comment by the agent (internal or public).
func (o *Org) Comment(ticket uuid.UUID, content string, internal bool) {
	o.t.Helper()
	require.NoError(o.t, o.db.Exec(`INSERT INTO comments (org_id, ticket_id, author_id, content, is_internal) VALUES (?, ?, ?, ?, ?)`,
		o.ID, ticket, o.Agent, content, internal).Error)
}

// Article publishes a KB article.
func (o *Org) Article(title, content string) uuid.UUID {
	o.t.Helper()
	id := uuid.Must(uuid.NewV7())
	slug := fmt.Sprintf("a-%s", id.String()[24:])
	require.NoError(o.t, o.db.Exec(`INSERT INTO kb_articles (id, org_id, title, slug, content, is_published, published_at)
		VALUES (?, ?, ?, ?, ?, true, now())`, id, o.ID, title, slug, content).Error)
	return id
}

// Canned adds a shared canned response.
func (o *Org) Canned(title, content string) uuid.UUID {
	o.t.Helper()
	id := uuid.Must(uuid.NewV7())
	require.NoError(o.t, o.db.Exec(`INSERT INTO canned_responses (id, org_id, title, content, created_by, is_shared)
		VALUES (?, ?, ?, ?, ?, true)`, id, o.ID, title, content, o.Agent).Error)
	return id
}

// History inserts n resolved tickets per topic (account, billing, network)
// with varied wording, each with its service, category and priority and
// a public staff reply, to train on.
func (o *Org) History(n int) {
	o.t.Helper()
	topics := []struct {
		service, category, priority, reply string
		subjects, bodies                   []string
	}{
		{"Accounts", "account", "medium", "I have reset your password; use the link in the e-mail to choose a new one.",
			[]string{"Password reset", "Cannot log in", "Forgot my password", "Login fails", "Account locked", "Reset my password please"},
			[]string{"I forgot my password and cannot log in to my account.", "The login page says my password is wrong.",
				"Please reset the password of my account.", "My account is locked after too many login attempts.",
				"I need a new password, the reset link expired.", "Sign in does not accept my password any more."}},
		{"Billing", "billing", "low", "We corrected the invoice and issued a refund for the difference.",
			[]string{"Wrong invoice", "Refund request", "Double charge", "Invoice amount", "Billing question", "Charged twice"},
			[]string{"The invoice for March shows the wrong amount.", "I was charged twice on my credit card.",
				"Please refund the duplicate payment.", "Why is my invoice higher than the price?",
				"I need a copy of the invoice with our VAT number.", "The payment was taken twice this month."}},
		{"Network", "network", "high", "The VPN gateway was restarted; please reconnect.",
			[]string{"VPN not connecting", "Wifi drops", "No internet", "Network slow", "VPN disconnects", "Cannot reach server"},
			[]string{"The VPN client fails to connect since this morning.", "The office wifi keeps dropping every few minutes.",
				"We have no internet connection on the second floor.", "The network is very slow when copying files.",
				"The VPN disconnects after five minutes.", "I cannot reach the file server over the network."}},
	}
	for i := range n {
		for _, tp := range topics {
			id := o.Ticket(Ticket{Subject: tp.subjects[i%len(tp.subjects)], Body: tp.bodies[(i/len(tp.subjects)+i)%len(tp.bodies)],
				Status: "resolved", Priority: tp.priority, Service: tp.service, Category: tp.category})
			o.Comment(id, tp.reply, false)
		}
	}
}

// Counter returns the sum of the series of counter (or gauge) name whose
// labels include labels, in reg (0 when absent).
func Counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
			if g := m.GetGauge(); g != nil {
				sum += g.GetValue()
			}
		}
	}
	return sum
}
