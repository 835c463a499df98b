package httpapi_test

import (
	"strings"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// catalogParams gives fill the catalog's path parameters: fresh objects of
// org for the patterns that name them.
func (s *stack) catalogParams(pattern string, org uuid.UUID) []string {
	var out []string
	if strings.Contains(pattern, "{serviceID}") {
		out = append(out, "{serviceID}", s.newService(org, "Matrix", true).String())
	}
	if strings.Contains(pattern, "{cannedID}") {
		out = append(out, "{cannedID}", s.newCanned(org, s.orgStaff(org), "Matrix", true).String())
	}
	if strings.Contains(pattern, "{categoryID}") || strings.Contains(pattern, "{articleID}") {
		cat := s.newKBCategory(org, "Matrix")
		art := s.newKBArticle(org, &cat, "Matrix article", "Matrix body", "public", true)
		out = append(out, "{categoryID}", cat.String(), "{articleID}", art.String())
	}
	return out
}

// orgStaff is the demo agent of org, nil for an organisation without one.
func (s *stack) orgStaff(org uuid.UUID) *uuid.UUID {
	s.t.Helper()
	var id uuid.UUID
	err := s.db.Raw(`SELECT id FROM users WHERE org_id = ? AND role = 'agent' ORDER BY email LIMIT 1`, org).Row().Scan(&id)
	if err != nil {
		return nil
	}
	return &id
}

// newCanned inserts a canned response of org by author.
func (s *stack) newCanned(org uuid.UUID, author *uuid.UUID, title string, shared bool) uuid.UUID {
	s.t.Helper()
	id := uuid.Must(uuid.NewV7())
	require.NoError(s.t, s.db.Exec(`INSERT INTO canned_responses (id, org_id, title, content, created_by, is_shared)
		VALUES (?, ?, ?, 'Hello {{requester.name}}, ticket {{ticket.number}}.', ?, ?)`, id, org, title, author, shared).Error)
	return id
}

// newService inserts a service of org named name plus a unique suffix.
func (s *stack) newService(org uuid.UUID, name string, active bool) uuid.UUID {
	s.t.Helper()
	id := uuid.Must(uuid.NewV7())
	require.NoError(s.t, s.db.Exec(`INSERT INTO services (id, org_id, name, is_active) VALUES (?, ?, ?, ?)`,
		id, org, name+" "+id.String()[24:], active).Error)
	return id
}

func ptr[T any](v T) *T { return &v }

// newKBCategory inserts a category of org named name plus a unique suffix.
func (s *stack) newKBCategory(org uuid.UUID, name string) uuid.UUID {
	s.t.Helper()
	id := uuid.Must(uuid.NewV7())
	suffix := id.String()[24:]
	require.NoError(s.t, s.db.Exec(`INSERT INTO kb_categories (id, org_id, name, slug) VALUES (?, ?, ?, ?)`,
		id, org, name+" "+suffix, "c-"+suffix).Error)
	return id
}

// newKBArticle inserts an article of org by its agent.
func (s *stack) newKBArticle(org uuid.UUID, category *uuid.UUID, title, content, visibility string, published bool) uuid.UUID {
	s.t.Helper()
	id := uuid.Must(uuid.NewV7())
	require.NoError(s.t, s.db.Exec(`INSERT INTO kb_articles (id, org_id, category_id, title, slug, content, visibility, is_published,
		published_at, author_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN ? THEN now() END, ?)`,
		id, org, category, title, "a-"+id.String()[24:], content, visibility, published, published, s.orgStaff(org)).Error)
	return id
}
