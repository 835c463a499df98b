// Package kb is the knowledge base: an organisation's categories and
// articles, who reads and writes which, and full-text search over them.
//
// Staff read everything of their organisation; customers only published
// public articles (and the categories holding some). Agents write drafts;
// publishers (managers, admins) publish, change published articles and
// manage categories. An article body is plain text or sanitised HTML, kept
// as comments keep theirs: Content is always the plain text (search, AI
// suggestions, excerpts), ContentHTML the sanitised markup when sent.
package kb

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/audit"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/tickets"
	"github.com/atumdesk/atumdesk/models"
)

// Limits on fields and lists.
const (
	MaxName        = 200
	MaxTitle       = 300
	MaxSlug        = 100
	MaxDescription = 2000
	MaxContent     = 200_000 // characters of plain text; the HTML may be 4× that
	MaxQuery       = 200
	MaxPosition    = 100_000
	maxCategories  = 1000
	excerptLen     = 240
)

// Viewer is who reads or writes: their organisation and what they may do.
type Viewer struct {
	OrgID  uuid.UUID
	UserID uuid.UUID
	// Staff read drafts and internal articles and write drafts.
	Staff bool
	// Publisher publishes, changes published articles and manages
	// categories (auth.KBPublish).
	Publisher bool
}

// Store reads and writes the knowledge base.
type Store struct {
	db   *gorm.DB
	html *tickets.Sanitizer
}

// New returns a store over db.
func New(db *gorm.DB) *Store { return &Store{db: db, html: tickets.NewSanitizer()} }

// Not-found errors, also for malformed ids and slugs.
var (
	ErrCategoryNotFound = apperr.New(apperr.NotFound, "Knowledge-base category not found.")
	ErrArticleNotFound  = apperr.New(apperr.NotFound, "Knowledge-base article not found.")
	errNotPublisher     = apperr.New(apperr.Forbidden, "Only managers and admins publish articles and manage categories.")
	// errPublished: like a ticket's status, the article's state decides
	// what the caller may do with it (409, as for ticket transitions).
	errPublished = apperr.New(apperr.InvalidState,
		"The article is published: a manager or admin changes it, or unpublishes it so it can be edited as a draft.")
)

// visibleTo is the SQL condition on articles alias a that v may read.
func visibleTo(v Viewer) string {
	if v.Staff {
		return "true"
	}
	return "a.is_published AND a.visibility = 'public'"
}

// ---- categories ----

// Category is a group of articles. ArticleCount counts the articles the
// viewer may read.
type Category struct {
	ID           uuid.UUID `json:"id"`
	Name         string    `json:"name"`
	Slug         string    `json:"slug"`
	Description  string    `json:"description"`
	Position     int       `json:"position"`
	ArticleCount int64     `json:"article_count"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// CategoryInput is the body of a category create (name required) or
// update (every field optional). Slug defaults to one made from the name.
type CategoryInput struct {
	Name        *string `json:"name"`
	Slug        *string `json:"slug"`
	Description *string `json:"description"`
	Position    *int    `json:"position"`
}

func (s *Store) categoryQuery(ctx context.Context, db *gorm.DB, v Viewer) *gorm.DB {
	count := `(SELECT count(*) FROM kb_articles a WHERE a.org_id = c.org_id AND a.category_id = c.id AND ` + visibleTo(v) + `)`
	q := db.WithContext(ctx).Table("kb_categories c").
		Select(`c.id, c.name, c.slug, c.description, c.position, c.created_at, c.updated_at, `+count+` AS article_count`).
		Where("c.org_id = ?", v.OrgID)
	if !v.Staff {
		// Customers see the categories that hold something for them.
		q = q.Where(`EXISTS (SELECT 1 FROM kb_articles a WHERE a.org_id = c.org_id AND a.category_id = c.id AND ` + visibleTo(v) + `)`)
	}
	return q
}

// ListCategories lists the categories v may see by position, then name.
func (s *Store) ListCategories(ctx context.Context, v Viewer) ([]Category, error) {
	out := []Category{}
	err := s.categoryQuery(ctx, s.db, v).Order("c.position, lower(c.name), c.id").Limit(maxCategories).Find(&out).Error
	if err != nil {
		return nil, database.Classify(fmt.Errorf("kb: list categories: %w", err))
	}
	return out, nil
}

// GetCategory reads a category by id or slug.
func (s *Store) GetCategory(ctx context.Context, v Viewer, idOrSlug string) (*Category, error) {
	return s.getCategory(ctx, s.db, v, idOrSlug)
}

func (s *Store) getCategory(ctx context.Context, db *gorm.DB, v Viewer, idOrSlug string) (*Category, error) {
	q, ok := byIDOrSlug(s.categoryQuery(ctx, db, v), "c", idOrSlug)
	if !ok {
		return nil, ErrCategoryNotFound
	}
	var c Category
	if err := q.Take(&c).Error; err != nil {
		return nil, notFound(err, ErrCategoryNotFound)
	}
	return &c, nil
}

func (in *CategoryInput) check(create bool, fields map[string]string) map[string]any {
	ch := map[string]any{}
	if in.Name != nil || create {
		ch["name"] = text(in.Name, "name", MaxName, true, fields)
	}
	if in.Slug != nil {
		ch["slug"] = slugField(*in.Slug, fields)
	} else if create {
		ch["slug"] = Slugify(fmt.Sprint(ch["name"]), "category")
	}
	if in.Description != nil {
		ch["description"] = text(in.Description, "description", MaxDescription, false, fields)
	}
	if in.Position != nil {
		if *in.Position < 0 || *in.Position > MaxPosition {
			fields["position"] = fmt.Sprintf("must be 0..%d", MaxPosition)
		}
		ch["position"] = *in.Position
	}
	return ch
}

// CreateCategory creates a category; entry is the audit context.
func (s *Store) CreateCategory(ctx context.Context, v Viewer, in CategoryInput, entry audit.Entry) (*Category, error) {
	if !v.Publisher {
		return nil, errNotPublisher
	}
	fields := map[string]string{}
	ch := in.check(true, fields)
	if err := apperr.Fields(fields); err != nil {
		return nil, err
	}
	id := models.NewID()
	ch["id"], ch["org_id"] = id, v.OrgID
	var out *Category
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Table("kb_categories").Create(ch).Error; err != nil {
			return err
		}
		var err error
		if out, err = s.getCategory(ctx, tx, v, id.String()); err != nil {
			return err
		}
		return writeAudit(ctx, tx, entry, "kb_category.created", "kb_category", id, nil, out)
	})
	if err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// UpdateCategory changes the given fields of a category.
func (s *Store) UpdateCategory(ctx context.Context, v Viewer, id uuid.UUID, in CategoryInput, entry audit.Entry) (*Category, error) {
	if !v.Publisher {
		return nil, errNotPublisher
	}
	fields := map[string]string{}
	ch := in.check(false, fields)
	if err := apperr.Fields(fields); err != nil {
		return nil, err
	}
	var out *Category
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, err := s.lockCategory(ctx, tx, v, id)
		if err != nil {
			return err
		}
		if len(ch) == 0 {
			out = cur
			return nil
		}
		if err := tx.Table("kb_categories").Where("id = ? AND org_id = ?", id, v.OrgID).Updates(ch).Error; err != nil {
			return err
		}
		if out, err = s.getCategory(ctx, tx, v, id.String()); err != nil {
			return err
		}
		return writeAudit(ctx, tx, entry, "kb_category.updated", "kb_category", id, cur, out)
	})
	if err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// DeleteCategory deletes a category; its articles become uncategorised.
func (s *Store) DeleteCategory(ctx context.Context, v Viewer, id uuid.UUID, entry audit.Entry) error {
	if !v.Publisher {
		return errNotPublisher
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, err := s.lockCategory(ctx, tx, v, id)
		if err != nil {
			return err
		}
		if err := tx.Exec(`DELETE FROM kb_categories WHERE id = ? AND org_id = ?`, id, v.OrgID).Error; err != nil {
			return err
		}
		return writeAudit(ctx, tx, entry, "kb_category.deleted", "kb_category", id, cur, nil)
	})
	return classify(err)
}

func (s *Store) lockCategory(ctx context.Context, tx *gorm.DB, v Viewer, id uuid.UUID) (*Category, error) {
	if err := lockRow(ctx, tx, "kb_categories", v.OrgID, id, ErrCategoryNotFound); err != nil {
		return nil, err
	}
	return s.getCategory(ctx, tx, v, id.String())
}

// lockRow locks row id of the organisation's table for the transaction;
// nf when there is none.
func lockRow(ctx context.Context, tx *gorm.DB, table string, orgID, id uuid.UUID, nf error) error {
	res := tx.WithContext(ctx).Exec(`SELECT 1 FROM `+table+` WHERE id = ? AND org_id = ? FOR UPDATE`, id, orgID)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return nf
	}
	return nil
}

// ---- articles ----

// Article is a whole article. Staff also get its author, and drafts.
type Article struct {
	ID          uuid.UUID           `json:"id"`
	CategoryID  *uuid.UUID          `json:"category_id"`
	Title       string              `json:"title"`
	Slug        string              `json:"slug"`
	Content     string              `json:"content"`
	ContentHTML *string             `json:"content_html"`
	Visibility  models.KBVisibility `json:"visibility"`
	IsPublished bool                `json:"is_published"`
	PublishedAt *time.Time          `json:"published_at"`
	CreatedAt   time.Time           `json:"created_at"`
	UpdatedAt   time.Time           `json:"updated_at"`
	*StaffInfo
}

// Summary is an article in a list: an excerpt of its text instead of the
// body.
type Summary struct {
	ID          uuid.UUID           `json:"id"`
	CategoryID  *uuid.UUID          `json:"category_id"`
	Title       string              `json:"title"`
	Slug        string              `json:"slug"`
	Excerpt     string              `json:"excerpt"`
	Visibility  models.KBVisibility `json:"visibility"`
	IsPublished bool                `json:"is_published"`
	PublishedAt *time.Time          `json:"published_at"`
	CreatedAt   time.Time           `json:"created_at"`
	UpdatedAt   time.Time           `json:"updated_at"`
	*StaffInfo
}

// StaffInfo are the fields only staff get (nil for customers, so they are
// left out of the JSON).
type StaffInfo struct {
	AuthorID   *uuid.UUID `json:"author_id"`
	AuthorName *string    `json:"author_name"`
	ViewCount  int64      `json:"view_count"`
}

// articleRow is an article as read from the database.
type articleRow struct {
	ID          uuid.UUID
	CategoryID  *uuid.UUID
	Title       string
	Slug        string
	Content     string
	ContentHTML *string
	Visibility  models.KBVisibility
	IsPublished bool
	PublishedAt *time.Time
	AuthorID    *uuid.UUID
	AuthorName  *string
	ViewCount   int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (r *articleRow) staff(v Viewer) *StaffInfo {
	if !v.Staff {
		return nil
	}
	return &StaffInfo{AuthorID: r.AuthorID, AuthorName: r.AuthorName, ViewCount: r.ViewCount}
}

func (r *articleRow) article(v Viewer) *Article {
	return &Article{ID: r.ID, CategoryID: r.CategoryID, Title: r.Title, Slug: r.Slug, Content: r.Content,
		ContentHTML: r.ContentHTML, Visibility: r.Visibility, IsPublished: r.IsPublished, PublishedAt: r.PublishedAt,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, StaffInfo: r.staff(v)}
}

func (r *articleRow) summary(v Viewer) Summary {
	return Summary{ID: r.ID, CategoryID: r.CategoryID, Title: r.Title, Slug: r.Slug, Excerpt: excerpt(r.Content),
		Visibility: r.Visibility, IsPublished: r.IsPublished, PublishedAt: r.PublishedAt,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, StaffInfo: r.staff(v)}
}

// excerpt is the start of s, cut at a word boundary when one is near.
func excerpt(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= excerptLen {
		return s
	}
	r := []rune(s)[:excerptLen]
	cut := string(r)
	if i := strings.LastIndexByte(cut, ' '); i > excerptLen/2 {
		cut = cut[:i]
	}
	return cut + "…"
}

const articleColumns = `a.id, a.category_id, a.title, a.slug, %s AS content, a.content_html, a.visibility, a.is_published,
	a.published_at, a.author_id, u.name AS author_name, a.view_count, a.created_at, a.updated_at`

func articleQuery(ctx context.Context, db *gorm.DB, v Viewer, content string) *gorm.DB {
	return db.WithContext(ctx).Table("kb_articles a").Select(fmt.Sprintf(articleColumns, content)).
		Joins("LEFT JOIN users u ON u.id = a.author_id AND u.org_id = a.org_id").
		Where("a.org_id = ?", v.OrgID).Where(visibleTo(v))
}

// Filter selects articles: a full-text query (best matches first, else
// newest first), a category, and for staff the status (draft, published)
// and visibility. After is the keyset cursor (the last id of the previous
// page); Limit+1 rows are returned so the caller sees a next page.
type Filter struct {
	Query      string
	CategoryID *uuid.UUID
	Status     string
	Visibility string
	After      uuid.UUID
	Limit      int
}

// ListArticles lists the articles v may read that match f.
func (s *Store) ListArticles(ctx context.Context, v Viewer, f Filter) ([]Summary, error) {
	fields := map[string]string{}
	// Lists carry excerpts, not bodies.
	q := articleQuery(ctx, s.db, v, "left(a.content, 1000)")
	switch f.Status {
	case "":
	case "draft", "published":
		q = q.Where("a.is_published = ?", f.Status == "published")
	default:
		fields["status"] = "must be draft or published"
	}
	if f.Visibility != "" {
		if !models.KBVisibility(f.Visibility).Valid() {
			fields["visibility"] = "must be public or internal"
		}
		q = q.Where("a.visibility = ?", f.Visibility)
	}
	if f.CategoryID != nil {
		q = q.Where("a.category_id = ?", *f.CategoryID)
	}
	query := strings.TrimSpace(f.Query)
	if utf8.RuneCountInString(query) > MaxQuery || !utf8.ValidString(query) || strings.ContainsRune(query, 0) {
		fields["q"] = fmt.Sprintf("must be at most %d characters of text", MaxQuery)
	}
	if err := apperr.Fields(fields); err != nil {
		return nil, err
	}
	if query == "" {
		if f.After != uuid.Nil {
			q = q.Where("a.id < ?", f.After)
		}
		q = q.Order("a.id DESC")
	} else {
		// 'simple' matches the column's configuration; the rank of the
		// cursor's article is the keyset position.
		const rank = `ts_rank(a.search, plainto_tsquery('simple', ?))`
		q = q.Where(`a.search @@ plainto_tsquery('simple', ?)`, query)
		if f.After != uuid.Nil {
			q = q.Where(`(`+rank+`, a.id) < (SELECT ts_rank(c.search, plainto_tsquery('simple', ?)), c.id
				FROM kb_articles c WHERE c.id = ? AND c.org_id = ?)`, query, query, f.After, v.OrgID)
		}
		q = q.Order(clause.OrderBy{Expression: clause.Expr{SQL: rank + ` DESC, a.id DESC`, Vars: []any{query}}})
	}
	var rows []articleRow
	if err := q.Limit(f.Limit + 1).Find(&rows).Error; err != nil {
		return nil, database.Classify(fmt.Errorf("kb: list articles: %w", err))
	}
	out := make([]Summary, len(rows))
	for i := range rows {
		out[i] = rows[i].summary(v)
	}
	return out, nil
}

// GetArticle reads an article by id or slug.
func (s *Store) GetArticle(ctx context.Context, v Viewer, idOrSlug string) (*Article, error) {
	r, err := s.getArticle(ctx, s.db, v, idOrSlug)
	if err != nil {
		return nil, err
	}
	return r.article(v), nil
}

func (s *Store) getArticle(ctx context.Context, db *gorm.DB, v Viewer, idOrSlug string) (*articleRow, error) {
	q, ok := byIDOrSlug(articleQuery(ctx, db, v, "a.content"), "a", idOrSlug)
	if !ok {
		return nil, ErrArticleNotFound
	}
	var r articleRow
	if err := q.Take(&r).Error; err != nil {
		return nil, notFound(err, ErrArticleNotFound)
	}
	return &r, nil
}

// lockArticle locks and reads a staff-visible article for a change.
func (s *Store) lockArticle(ctx context.Context, tx *gorm.DB, v Viewer, id uuid.UUID) (*articleRow, error) {
	if !v.Staff {
		return nil, ErrArticleNotFound
	}
	if err := lockRow(ctx, tx, "kb_articles", v.OrgID, id, ErrArticleNotFound); err != nil {
		return nil, err
	}
	return s.getArticle(ctx, tx, v, id.String())
}

// ArticleInput is the body of an article create (title and a body
// required) or update (every field optional). A non-empty content_html is
// sanitised and wins over content, which is then its plain text.
// CategoryID is raw so that null (uncategorised) differs from absent.
type ArticleInput struct {
	Title       *string         `json:"title"`
	Slug        *string         `json:"slug"`
	CategoryID  json.RawMessage `json:"category_id"`
	Content     *string         `json:"content"`
	ContentHTML *string         `json:"content_html"`
	Visibility  *string         `json:"visibility"`
}

func (s *Store) check(in *ArticleInput, create bool, fields map[string]string) map[string]any {
	ch := map[string]any{}
	if in.Title != nil || create {
		ch["title"] = text(in.Title, "title", MaxTitle, true, fields)
	}
	if in.Slug != nil {
		ch["slug"] = slugField(*in.Slug, fields)
	}
	switch {
	case string(in.CategoryID) == "null":
		ch["category_id"] = nil
	case in.CategoryID != nil:
		var id uuid.UUID
		if json.Unmarshal(in.CategoryID, &id) != nil || id == uuid.Nil {
			fields["category_id"] = "must be a category id or null"
		}
		ch["category_id"] = id
	}
	if in.Content != nil || in.ContentHTML != nil || create {
		body := tickets.RichText{}
		if in.ContentHTML != nil && strings.TrimSpace(*in.ContentHTML) != "" {
			body = s.html.FromHTML(*in.ContentHTML)
		} else if in.Content != nil {
			body.Text = strings.TrimSpace(*in.Content)
		}
		switch {
		case body.Text == "":
			fields["content"] = "is required (content, or content_html with text in it)"
		case !utf8.ValidString(body.Text) || strings.ContainsRune(body.Text, 0):
			fields["content"] = "must be UTF-8 text"
		case utf8.RuneCountInString(body.Text) > MaxContent || (body.HTML != nil && len(*body.HTML) > 4*MaxContent):
			fields["content"] = fmt.Sprintf("must be at most %d characters", MaxContent)
		}
		ch["content"], ch["content_html"] = body.Text, body.HTML
	}
	if in.Visibility != nil {
		if !models.KBVisibility(*in.Visibility).Valid() {
			fields["visibility"] = "must be public or internal"
		}
		ch["visibility"] = *in.Visibility
	}
	return ch
}

// checkCategory reports a category_id that names no category of the
// organisation as a field error.
func checkCategory(tx *gorm.DB, v Viewer, ch map[string]any, fields map[string]string) error {
	id, ok := ch["category_id"].(uuid.UUID)
	if !ok || fields["category_id"] != "" {
		return nil
	}
	var n int64
	if err := tx.Raw(`SELECT count(*) FROM kb_categories WHERE id = ? AND org_id = ?`, id, v.OrgID).Scan(&n).Error; err != nil {
		return err
	}
	if n == 0 {
		fields["category_id"] = "names no category of this organisation"
	}
	return nil
}

// CreateArticle creates a draft written by v. The slug defaults to one
// made from the title (with a suffix when that is taken).
func (s *Store) CreateArticle(ctx context.Context, v Viewer, in ArticleInput, entry audit.Entry) (*Article, error) {
	if !v.Staff {
		return nil, apperr.New(apperr.Forbidden, "Only staff write articles.")
	}
	fields := map[string]string{}
	ch := s.check(&in, true, fields)
	id := models.NewID()
	ch["id"], ch["org_id"], ch["author_id"], ch["is_published"] = id, v.OrgID, v.UserID, false
	var out *Article
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := checkCategory(tx, v, ch, fields); err != nil {
			return err
		}
		if err := apperr.Fields(fields); err != nil {
			return err
		}
		if in.Slug == nil {
			slug, err := freeSlug(tx, v.OrgID, Slugify(fmt.Sprint(ch["title"]), "article"), id)
			if err != nil {
				return err
			}
			ch["slug"] = slug
		}
		if err := tx.Table("kb_articles").Create(ch).Error; err != nil {
			return err
		}
		r, err := s.getArticle(ctx, tx, v, id.String())
		if err != nil {
			return err
		}
		out = r.article(v)
		return writeAudit(ctx, tx, entry, "kb_article.created", "kb_article", id, nil, auditArticle(out))
	})
	if err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// UpdateArticle changes the given fields. A published article is changed
// by publishers only (others get an InvalidState error).
func (s *Store) UpdateArticle(ctx context.Context, v Viewer, id uuid.UUID, in ArticleInput, entry audit.Entry) (*Article, error) {
	fields := map[string]string{}
	ch := s.check(&in, false, fields)
	var out *Article
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, err := s.lockArticle(ctx, tx, v, id)
		if err != nil {
			return err
		}
		if cur.IsPublished && !v.Publisher {
			return errPublished
		}
		if err := checkCategory(tx, v, ch, fields); err != nil {
			return err
		}
		if err := apperr.Fields(fields); err != nil {
			return err
		}
		if len(ch) == 0 {
			out = cur.article(v)
			return nil
		}
		if err := tx.Table("kb_articles").Where("id = ? AND org_id = ?", id, v.OrgID).Updates(ch).Error; err != nil {
			return err
		}
		r, err := s.getArticle(ctx, tx, v, id.String())
		if err != nil {
			return err
		}
		out = r.article(v)
		return writeAudit(ctx, tx, entry, "kb_article.updated", "kb_article", id, auditArticle(cur.article(v)), auditArticle(out))
	})
	if err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// SetPublished publishes or unpublishes an article (publishers only). It
// is idempotent: an article already in that state is returned unchanged.
func (s *Store) SetPublished(ctx context.Context, v Viewer, id uuid.UUID, publish bool, entry audit.Entry) (*Article, error) {
	if !v.Publisher {
		return nil, errNotPublisher
	}
	var out *Article
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, err := s.lockArticle(ctx, tx, v, id)
		if err != nil {
			return err
		}
		if cur.IsPublished == publish {
			out = cur.article(v)
			return nil
		}
		// published_at is the first publication (kept when republished).
		if err := tx.Exec(`UPDATE kb_articles SET is_published = ?, published_at = CASE WHEN ? THEN coalesce(published_at, now()) ELSE published_at END
			WHERE id = ? AND org_id = ?`, publish, publish, id, v.OrgID).Error; err != nil {
			return err
		}
		r, err := s.getArticle(ctx, tx, v, id.String())
		if err != nil {
			return err
		}
		out = r.article(v)
		action := "kb_article.unpublished"
		if publish {
			action = "kb_article.published"
		}
		return writeAudit(ctx, tx, entry, action, "kb_article", id,
			map[string]any{"is_published": cur.IsPublished}, map[string]any{"is_published": publish})
	})
	if err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// DeleteArticle deletes an article; a published one only by publishers.
func (s *Store) DeleteArticle(ctx context.Context, v Viewer, id uuid.UUID, entry audit.Entry) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, err := s.lockArticle(ctx, tx, v, id)
		if err != nil {
			return err
		}
		if cur.IsPublished && !v.Publisher {
			return errPublished
		}
		if err := tx.Exec(`DELETE FROM kb_articles WHERE id = ? AND org_id = ?`, id, v.OrgID).Error; err != nil {
			return err
		}
		return writeAudit(ctx, tx, entry, "kb_article.deleted", "kb_article", id, auditArticle(cur.article(v)), nil)
	})
	return classify(err)
}

// ---- helpers ----

// text validates an optional text field: trimmed, at most max characters,
// required when asked.
func text(p *string, field string, limit int, required bool, fields map[string]string) string {
	s := ""
	if p != nil {
		s = strings.TrimSpace(*p)
	}
	switch {
	case required && s == "":
		fields[field] = fmt.Sprintf("is required, at most %d characters", limit)
	case !utf8.ValidString(s) || strings.ContainsRune(s, 0):
		fields[field] = "must be UTF-8 text"
	case utf8.RuneCountInString(s) > limit:
		fields[field] = fmt.Sprintf("must be at most %d characters", limit)
	}
	return s
}

func validSlug(s string) bool {
	if s == "" || len(s) > MaxSlug || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

func slugField(s string, fields map[string]string) string {
	if !validSlug(s) {
		fields["slug"] = fmt.Sprintf("must be 1..%d of a-z, 0-9 and inner hyphens", MaxSlug)
	}
	return s
}

// latin spells out the Latin letters that do not decompose into a base
// letter and marks.
var latin = strings.NewReplacer("ß", "ss", "æ", "ae", "œ", "oe", "ø", "o", "đ", "d", "ł", "l", "þ", "th")

// Slugify makes a slug of s: accents dropped, lower case, runs of other
// characters as one hyphen; fallback when nothing is left.
func Slugify(s, fallback string) string {
	var b strings.Builder
	dash := false
	for _, r := range norm.NFKD.String(latin.Replace(strings.ToLower(s))) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
		if b.Len() >= MaxSlug-8 { // room for a suffix
			break
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" {
		return fallback
	}
	return out
}

// freeSlug is slug, or slug with a suffix from id when another article of
// the organisation has it.
func freeSlug(tx *gorm.DB, orgID uuid.UUID, slug string, id uuid.UUID) (string, error) {
	var n int64
	if err := tx.Raw(`SELECT count(*) FROM kb_articles WHERE org_id = ? AND slug = ?`, orgID, slug).Scan(&n).Error; err != nil {
		return "", err
	}
	if n == 0 {
		return slug, nil
	}
	hex := strings.ReplaceAll(id.String(), "-", "")
	return slug + "-" + hex[len(hex)-6:], nil
}

// auditArticle is what the audit log keeps of an article: not the body
// (which may be large), its size and a digest to tell edits apart.
func auditArticle(a *Article) map[string]any {
	html := ""
	if a.ContentHTML != nil {
		html = *a.ContentHTML
	}
	return map[string]any{"title": a.Title, "slug": a.Slug, "category_id": a.CategoryID, "visibility": a.Visibility,
		"is_published": a.IsPublished, "content_chars": utf8.RuneCountInString(a.Content),
		"content_sha256": fmt.Sprintf("%x", sha256.Sum256([]byte(a.Content+"\x00"+html)))}
}

func writeAudit(ctx context.Context, tx *gorm.DB, e audit.Entry, action, entity string, id uuid.UUID, before, after any) error {
	e.Action, e.EntityType, e.EntityID, e.Before, e.After = action, entity, &id, before, after
	return audit.Write(ctx, tx, e)
}

func notFound(err, nf error) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nf
	}
	return database.Classify(err)
}

// classify names the slug as the conflicting field.
func classify(err error) error {
	if database.SQLState(err) == "23505" {
		return &apperr.Error{Kind: apperr.Conflict, Msg: "The slug is taken in this organisation.",
			Fields: map[string]string{"slug": "is taken"}, Err: err}
	}
	return database.Classify(err)
}

// byIDOrSlug narrows q (whose table is aliased alias) to the row named by
// an id or a slug; ok is false when idOrSlug is neither.
func byIDOrSlug(q *gorm.DB, alias, idOrSlug string) (*gorm.DB, bool) {
	if id, err := uuid.Parse(idOrSlug); err == nil {
		return q.Where(alias+".id = ?", id), true
	}
	if validSlug(idOrSlug) {
		return q.Where(alias+".slug = ?", idOrSlug), true
	}
	return q, false
}
