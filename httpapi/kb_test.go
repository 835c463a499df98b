package httpapi_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKnowledgeBase(t *testing.T) {
	s := newStack(t)
	acme, globex := s.orgs["acme"], s.orgs["globex"]
	agent, manager, customer := s.login("agent@acme.test"), s.login("manager@acme.test"), s.login("customer_user@acme.test")
	cats, arts := "/api/v1/kb/categories", "/api/v1/kb/articles"

	// the demo seed: customers get its published public articles only
	var seeded []string
	for _, it := range itemsOf(t, s.do("GET", arts, customer, nil)) {
		seeded = append(seeded, it["slug"].(string))
	}
	require.ElementsMatch(t, []string{"file-a-good-ticket", "invoice-payment-terms"}, seeded)
	require.Len(t, itemsOf(t, s.do("GET", arts, agent, nil)), 4)
	require.Len(t, itemsOf(t, s.do("GET", cats, customer, nil)), 2, "the runbook category holds nothing for customers")
	// from here on, only this test's articles
	require.NoError(t, s.db.Exec(`DELETE FROM kb_articles`).Error)
	require.NoError(t, s.db.Exec(`DELETE FROM kb_categories`).Error)

	// categories: slug from the name, validation, conflicts
	res := s.do("POST", cats, manager, map[string]any{"name": "Getting Started — Café", "position": 2})
	require.Equal(t, 201, res.status, string(res.body))
	cat := res.json(t)
	catID := cat["id"].(string)
	require.Equal(t, "getting-started-cafe", cat["slug"])
	dup := s.do("POST", cats, manager, map[string]any{"name": "Other", "slug": "getting-started-cafe"})
	require.Equal(t, 409, dup.status)
	require.Contains(t, dup.json(t)["errors"], "slug")
	bad := s.do("POST", cats, manager, map[string]any{"name": "", "slug": "Not A Slug", "position": -1})
	require.Equal(t, 422, bad.status)
	for _, f := range []string{"name", "slug", "position"} {
		require.Contains(t, bad.json(t)["errors"], f)
	}
	require.Equal(t, 400, s.do("POST", cats, manager, map[string]any{"name": "X", "org_id": globex}).status)

	// articles: agents write drafts; HTML is sanitised, its text searchable
	bad = s.do("POST", arts, agent, map[string]any{"title": " ", "category_id": s.newKBCategory(globex, "Theirs"), "visibility": "secret"})
	require.Equal(t, 422, bad.status, string(bad.body))
	for _, f := range []string{"title", "content", "category_id", "visibility"} {
		require.Contains(t, bad.json(t)["errors"], f)
	}
	require.Equal(t, 400, s.do("POST", arts, agent, map[string]any{"title": "T", "content": "C", "is_published": true}).status)
	res = s.do("POST", arts, agent, map[string]any{"title": "Reset your printer", "category_id": catID,
		"content_html": `<p onclick="steal()">Hold the <b>power</b> button of the printer.</p><script>window.__x=1</script><img src=x onerror=alert(1)>`})
	require.Equal(t, 201, res.status, string(res.body))
	draft := res.json(t)
	draftID := draft["id"].(string)
	require.Equal(t, "reset-your-printer", draft["slug"])
	require.Equal(t, false, draft["is_published"])
	require.Equal(t, "public", draft["visibility"])
	require.Equal(t, "Hold the power button of the printer.", draft["content"])
	html := draft["content_html"].(string)
	require.Contains(t, html, "<b>power</b>")
	for _, evil := range []string{"script", "onclick", "onerror", "__x"} {
		require.NotContains(t, html, evil)
	}
	require.Equal(t, s.userID("agent@acme.test").String(), draft["author_id"])
	// same title: the slug gets a suffix
	res = s.do("POST", arts, agent, map[string]any{"title": "Reset your printer", "content": "Printer: unplug it, count to ten."})
	require.Equal(t, 201, res.status)
	second := res.json(t)
	require.True(t, strings.HasPrefix(second["slug"].(string), "reset-your-printer-"), second["slug"])
	require.Nil(t, second["content_html"])

	// customers see neither drafts nor internal articles, by id or slug
	internal := s.newKBArticle(acme, nil, "Printer admin password", "The printer admin password is in the vault.", "internal", true)
	require.Equal(t, 404, s.do("GET", arts+"/"+draftID, customer, nil).status)
	require.Equal(t, 404, s.do("GET", arts+"/reset-your-printer", customer, nil).status)
	require.Equal(t, 404, s.do("GET", arts+"/"+internal.String(), customer, nil).status)
	require.Equal(t, 404, s.do("GET", cats+"/"+catID, customer, nil).status, "a category with nothing published is hidden")
	require.Equal(t, 200, s.do("GET", arts+"/"+internal.String(), agent, nil).status)
	require.Empty(t, itemsOf(t, s.do("GET", arts+"?q=printer", customer, nil)))

	// publishing is for managers and admins; then customers read it
	res = s.do("POST", arts+"/"+draftID+"/publish", manager, nil)
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, true, res.json(t)["is_published"])
	require.NotNil(t, res.json(t)["published_at"])
	require.Equal(t, 200, s.do("POST", arts+"/"+draftID+"/publish", manager, nil).status, "idempotent")
	got := s.do("GET", arts+"/reset-your-printer", customer, nil)
	require.Equal(t, 200, got.status, string(got.body))
	require.NotContains(t, got.json(t), "author_id")
	require.NotContains(t, got.json(t), "view_count")
	c := s.do("GET", cats+"/getting-started-cafe", customer, nil)
	require.Equal(t, 200, c.status)
	require.EqualValues(t, 1, c.json(t)["article_count"])

	// a published article is changed by publishers only
	require.Equal(t, 409, s.do("PATCH", arts+"/"+draftID, agent, map[string]any{"title": "Hacked"}).status)
	require.Equal(t, 409, s.do("DELETE", arts+"/"+draftID, agent, nil).status)
	res = s.do("PATCH", arts+"/"+draftID, manager, map[string]any{"title": "Reset the printer", "category_id": nil})
	require.Equal(t, 200, res.status, string(res.body))
	require.Nil(t, res.json(t)["category_id"])
	require.Equal(t, "reset-your-printer", res.json(t)["slug"], "the slug stays")
	require.Equal(t, 200, s.do("PATCH", arts+"/"+draftID, manager, map[string]any{"category_id": catID}).status)
	// a draft is every agent's to edit
	require.Equal(t, 200, s.do("PATCH", arts+"/"+second["id"].(string), agent, map[string]any{"content": "Printer: unplug it, count to ten, plug it back in."}).status)

	// search: organisation-scoped, ranked (title matches first), keyset pages
	s.newKBArticle(globex, nil, "Printer at Globex", "Globex printer notes.", "public", true)
	s.newKBArticle(acme, nil, "Toner", "Replace the toner cartridge; the printer shows a light.", "public", true)
	s.newKBArticle(acme, nil, "Scanner", "Nothing about the other device.", "public", true)
	titles := func(token, query string) []string {
		t.Helper()
		var out []string
		for after := ""; ; {
			r := s.do("GET", arts+query+after, token, nil)
			require.Equal(t, 200, r.status, string(r.body))
			m := r.json(t)
			for _, it := range m["items"].([]any) {
				a := it.(map[string]any)
				require.NotContains(t, a, "content_html", "lists carry excerpts")
				out = append(out, a["title"].(string))
			}
			next, _ := m["next_cursor"].(string)
			if next == "" {
				return out
			}
			after = "&after=" + next
		}
	}
	require.Equal(t, []string{"Reset the printer", "Toner"}, titles(customer, "?limit=1&q=printer"))
	staff := titles(agent, "?limit=1&q=Printer")
	require.Len(t, staff, 4) // + the internal article and the draft
	require.ElementsMatch(t, []string{"Reset the printer", "Printer admin password", "Toner", "Reset your printer"}, staff)
	require.Equal(t, []string{"Reset your printer"}, titles(agent, "?q=printer&status=draft"))
	require.Equal(t, []string{"Printer admin password"}, titles(agent, "?q=printer&visibility=internal"))
	require.Equal(t, []string{"Reset the printer"}, titles(customer, "?category_id="+catID))
	require.Empty(t, titles(customer, "?q=%21%21%21"))
	require.Equal(t, []string{"Scanner", "Toner", "Reset the printer"}, titles(customer, "?limit=2"), "newest first")
	for _, q := range []string{"?status=pending", "?visibility=secret", "?category_id=x", "?q=" + strings.Repeat("a", 201), "?limit=0"} {
		require.Equal(t, 422, s.do("GET", arts+q, agent, nil).status, q)
	}
	require.NotContains(t, titles(s.login("customer_user@globex.test"), "?q=printer"), "Toner")

	// unpublish hides it again; deleting a category keeps its articles
	require.Equal(t, 200, s.do("POST", arts+"/"+draftID+"/unpublish", manager, nil).status)
	require.Equal(t, 404, s.do("GET", arts+"/"+draftID, customer, nil).status)
	require.Equal(t, 204, s.do("DELETE", cats+"/"+catID, manager, nil).status)
	res = s.do("GET", arts+"/"+draftID, agent, nil)
	require.Equal(t, 200, res.status)
	require.Nil(t, res.json(t)["category_id"])
	require.Equal(t, 204, s.do("DELETE", arts+"/"+draftID, agent, nil).status, "a draft is the agents' to delete")

	var actions []string
	require.NoError(t, s.db.Raw(`SELECT action FROM audit_log WHERE entity_type LIKE 'kb_%' ORDER BY id`).Scan(&actions).Error)
	require.Equal(t, []string{"kb_category.created", "kb_article.created", "kb_article.created", "kb_article.published",
		"kb_article.updated", "kb_article.updated", "kb_article.updated", "kb_article.unpublished", "kb_category.deleted", "kb_article.deleted"}, actions)
}
