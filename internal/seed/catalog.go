package seed

import (
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// The demo knowledge base and canned responses of acme: a few of each kind
// (public, internal, draft; shared replies with placeholders), so the
// portal and the desk have something to show. Rows are matched by slug or
// title, so a second run adds nothing and keeps what users changed.

type demoCategory struct{ slug, name, description string }

type demoArticle struct {
	slug, category, title, content, visibility string
	published                                  bool
}

type demoReply struct{ title, content string }

var demoCategories = []demoCategory{
	{"getting-started", "Getting started", "Using the support portal."},
	{"billing", "Billing", "Invoices, payments and plans."},
	{"staff-runbooks", "Staff runbooks", "How the desk handles recurring requests."},
}

var demoArticles = []demoArticle{
	{"file-a-good-ticket", "getting-started", "How to file a good ticket",
		"Say what you tried, what you expected and what happened instead. Add screenshots or log files as attachments, " +
			"and pick the service the request is about: it reaches the right team sooner.", "public", true},
	{"invoice-payment-terms", "billing", "Invoices and payment terms",
		"Invoices are issued on the first working day of the month and are due within 30 days. " +
			"To change the billing address, file a ticket for the Billing service.", "public", true},
	{"handling-access-requests", "staff-runbooks", "Handling access requests",
		"Check that the requester's manager approved the request in the ticket before granting access; " +
			"grant the smallest role that does the job and note it in an internal note.", "internal", true},
	{"office-network-faq", "getting-started", "Office network FAQ",
		"Draft: guest Wi-Fi, wired ports and the meeting-room displays.", "public", false},
}

var demoReplies = []demoReply{
	{"Greeting", "Hello {{requester.name}},\n\nthank you for contacting Acme support. We are looking into ticket {{ticket.number}} and will get back to you shortly.\n\nBest regards,\n{{agent.name}}"},
	{"More information needed", "Hello {{requester.name}},\n\nto move on with ticket {{ticket.number}} we need a little more information: what did you try, and what happened?\n\n{{agent.name}}"},
	{"Resolved", "Hello {{requester.name}},\n\nwe consider ticket {{ticket.number}} resolved. Reply to this message if anything is still not working.\n\n{{agent.name}}"},
}

// upsertCatalog seeds acme's knowledge base and shared canned responses,
// written by its manager.
func upsertCatalog(tx *gorm.DB, orgID uuid.UUID, slug string) error {
	if slug != "acme" {
		return nil
	}
	var author uuid.UUID
	if err := tx.Raw(`SELECT id FROM users WHERE org_id = ? AND lower(email) = ?`, orgID, "manager@"+slug+".test").Row().Scan(&author); err != nil {
		return fmt.Errorf("seed: catalog author: %w", err)
	}
	for i, c := range demoCategories {
		if err := tx.Exec(`INSERT INTO kb_categories (id, org_id, name, slug, description, position) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (org_id, slug) DO NOTHING`, uuid.Must(uuid.NewV7()), orgID, c.name, c.slug, c.description, i).Error; err != nil {
			return fmt.Errorf("seed: kb category %s: %w", c.slug, err)
		}
	}
	for _, a := range demoArticles {
		err := tx.Exec(`INSERT INTO kb_articles (id, org_id, category_id, title, slug, content, visibility, is_published, published_at, author_id)
			VALUES (?, ?, (SELECT id FROM kb_categories WHERE org_id = ? AND slug = ?), ?, ?, ?, ?, ?, CASE WHEN ? THEN now() END, ?)
			ON CONFLICT (org_id, slug) DO NOTHING`,
			uuid.Must(uuid.NewV7()), orgID, orgID, a.category, a.title, a.slug, a.content, a.visibility, a.published, a.published, author).Error
		if err != nil {
			return fmt.Errorf("seed: kb article %s: %w", a.slug, err)
		}
	}
	for _, c := range demoReplies {
		err := tx.Exec(`INSERT INTO canned_responses (id, org_id, title, content, created_by, is_shared)
			SELECT ?, ?, ?, ?, ?, true
			WHERE NOT EXISTS (SELECT 1 FROM canned_responses WHERE org_id = ? AND title = ? AND is_shared)`,
			uuid.Must(uuid.NewV7()), orgID, c.title, c.content, author, orgID, c.title).Error
		if err != nil {
			return fmt.Errorf("seed: canned response %s: %w", c.title, err)
		}
	}
	return nil
}
