package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/auth"
	"github.com/atumdesk/atumdesk/internal/kb"
)

// The knowledge base (internal/kb): everyone reads what is for them
// (customers: published public articles), agents write drafts, managers and
// admins publish and manage categories. {categoryID} and {articleID} take
// an id or a slug for reads; writes take ids.

func kbViewer(p *Principal) kb.Viewer {
	return kb.Viewer{OrgID: p.OrgID, UserID: p.UserID, Staff: p.IsStaff(), Publisher: auth.Can(p.Role, auth.KBPublish)}
}

func kbID(r *http.Request, param string, nf error) (uuid.UUID, error) {
	id, err := uuid.Parse(chi.URLParam(r, param))
	if err != nil {
		return uuid.Nil, nf
	}
	return id, nil
}

func (s *Server) handleListKBCategories(w http.ResponseWriter, r *http.Request) {
	cs, err := s.kb.ListCategories(r.Context(), kbViewer(mustPrincipal(r)))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageResult[kb.Category]{Items: cs})
}

func (s *Server) handleGetKBCategory(w http.ResponseWriter, r *http.Request) {
	c, err := s.kb.GetCategory(r.Context(), kbViewer(mustPrincipal(r)), chi.URLParam(r, "categoryID"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) handleCreateKBCategory(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var in kb.CategoryInput
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.kb.CreateCategory(r.Context(), kbViewer(p), in, s.auditEntry(r, p, "", "", uuid.Nil, nil, nil))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/kb/categories/"+c.ID.String())
	writeJSON(w, http.StatusCreated, c)
}

func (s *Server) handlePatchKBCategory(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	id, err := kbID(r, "categoryID", kb.ErrCategoryNotFound)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in kb.CategoryInput
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.kb.UpdateCategory(r.Context(), kbViewer(p), id, in, s.auditEntry(r, p, "", "", id, nil, nil))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// handleDeleteKBCategory deletes a category; its articles stay,
// uncategorised.
func (s *Server) handleDeleteKBCategory(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	id, err := kbID(r, "categoryID", kb.ErrCategoryNotFound)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.kb.DeleteCategory(r.Context(), kbViewer(p), id, s.auditEntry(r, p, "", "", id, nil, nil)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleListKBArticles lists or searches articles: ?q= is a full-text
// search (best matches first), otherwise newest first; ?category_id=,
// and for staff ?status=draft|published and ?visibility=public|internal,
// filter. Keyset pages (?limit=, ?after=next_cursor).
func (s *Server) handleListKBArticles(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	v := r.URL.Query()
	pg, err := parsePage(v)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	fields := map[string]string{}
	f := kb.Filter{Query: v.Get("q"), CategoryID: uuidParam(v, "category_id", fields), Status: v.Get("status"),
		Visibility: v.Get("visibility"), After: pg.After, Limit: pg.Limit}
	if err := apperr.Fields(fields); err != nil {
		s.writeError(w, r, err)
		return
	}
	rows, err := s.kb.ListArticles(r.Context(), kbViewer(p), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageOf(rows, pg.Limit, func(a kb.Summary) uuid.UUID { return a.ID }))
}

func (s *Server) handleGetKBArticle(w http.ResponseWriter, r *http.Request) {
	a, err := s.kb.GetArticle(r.Context(), kbViewer(mustPrincipal(r)), chi.URLParam(r, "articleID"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// handleCreateKBArticle creates a draft; publishing is its own route.
func (s *Server) handleCreateKBArticle(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var in kb.ArticleInput
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := s.kb.CreateArticle(r.Context(), kbViewer(p), in, s.auditEntry(r, p, "", "", uuid.Nil, nil, nil))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/kb/articles/"+a.ID.String())
	writeJSON(w, http.StatusCreated, a)
}

func (s *Server) handlePatchKBArticle(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	id, err := kbID(r, "articleID", kb.ErrArticleNotFound)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in kb.ArticleInput
	if err := decodeJSON(w, r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := s.kb.UpdateArticle(r.Context(), kbViewer(p), id, in, s.auditEntry(r, p, "", "", id, nil, nil))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) handleDeleteKBArticle(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	id, err := kbID(r, "articleID", kb.ErrArticleNotFound)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.kb.DeleteArticle(r.Context(), kbViewer(p), id, s.auditEntry(r, p, "", "", id, nil, nil)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handlePublishKBArticle(w http.ResponseWriter, r *http.Request) {
	s.setKBArticlePublished(w, r, true)
}

func (s *Server) handleUnpublishKBArticle(w http.ResponseWriter, r *http.Request) {
	s.setKBArticlePublished(w, r, false)
}

func (s *Server) setKBArticlePublished(w http.ResponseWriter, r *http.Request, publish bool) {
	p := mustPrincipal(r)
	id, err := kbID(r, "articleID", kb.ErrArticleNotFound)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := s.kb.SetPublished(r.Context(), kbViewer(p), id, publish, s.auditEntry(r, p, "", "", id, nil, nil))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}
