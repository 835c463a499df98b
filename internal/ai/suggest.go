package ai

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/internal/ai/classify"
	"github.com/atumdesk/atumdesk/internal/ai/textvec"
	"github.com/atumdesk/atumdesk/internal/ai/vecindex"
	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/models"
)

// Similar-ticket ranking.
const (
	// candidatesPerResult: the index is asked for this many neighbours per
	// wanted result (at least minCandidates), which the classifier re-ranks.
	candidatesPerResult = 10
	minCandidates       = 50
	// labelBoost weighs the classifier's belief that a candidate's label
	// (its category, else its service) is the query's: cosine alone
	// confuses "cancel my order" with "change my order"; the organisation's
	// own labels tell them apart.
	labelBoost = 1.0
	// DuplicateSimilarity: an open ticket at least this similar is flagged
	// as a possible duplicate.
	DuplicateSimilarity = 0.9
)

// SimilarTicket is one neighbour of a ticket.
type SimilarTicket struct {
	TicketID   uuid.UUID           `json:"ticket_id"`
	Number     int64               `json:"number"`
	Subject    string              `json:"subject"`
	Status     models.TicketStatus `json:"status"`
	Priority   models.Priority     `json:"priority"`
	Category   *string             `json:"category"`
	ServiceID  *uuid.UUID          `json:"service_id"`
	Similarity float32             `json:"similarity"`
	Resolved   bool                `json:"resolved"`
	ResolvedAt *time.Time          `json:"resolved_at"`
	// Resolution is the last public staff reply of a resolved ticket.
	Resolution        string `json:"resolution,omitempty"`
	PossibleDuplicate bool   `json:"possible_duplicate"`
	rank              float64
}

// Candidate is a neighbour before ranking: its similarity and the label the
// organisation gave it (category, else service; "" when none).
type Candidate struct {
	Similarity float32
	Label      string
	Resolved   bool
}

// RankScores re-ranks candidates: cosine similarity plus labelBoost times
// the probability (under the query's classifier output probs) of the
// candidate's label. It returns one score per candidate.
func RankScores(cands []Candidate, m *classify.Model, probs []float64) []float64 {
	out := make([]float64, len(cands))
	for i, c := range cands {
		out[i] = float64(c.Similarity) + labelBoost*labelProb(m, probs, c.Label)
	}
	return out
}

type queryTicket struct {
	ID             uuid.UUID
	Subject        string
	Description    string
	EmbeddingModel *string
	Embedding      models.Vector
}

func (s *Service) loadQuery(ctx context.Context, orgID, ticketID uuid.UUID) (*queryTicket, error) {
	var q queryTicket
	err := s.db.WithContext(ctx).Raw(`SELECT t.id, t.subject, t.description, e.model AS embedding_model, e.embedding
		FROM tickets t LEFT JOIN ticket_embeddings e ON e.ticket_id = t.id AND e.org_id = t.org_id
		WHERE t.org_id = ? AND t.id = ?`, orgID, ticketID).Scan(&q).Error
	if err != nil {
		return nil, fmt.Errorf("ai: load ticket %s: %w", ticketID, err)
	}
	if q.ID == uuid.Nil {
		return nil, apperr.New(apperr.NotFound, "Ticket not found.")
	}
	return &q, nil
}

// Similar returns up to k tickets of the organisation nearest to ticketID
// (the ticket itself excluded): the nearest by vector, re-ranked with the
// organisation's classifier, resolved ones first with their resolution.
func (s *Service) Similar(ctx context.Context, orgID, ticketID uuid.UUID, k int) ([]SimilarTicket, error) {
	k = min(max(k, 1), 50)
	q, err := s.loadQuery(ctx, orgID, ticketID)
	if err != nil {
		return nil, err
	}
	text := q.Subject + "\n" + q.Description
	key, vec := vecindex.Key{Org: orgID}, []float32(q.Embedding)
	if q.EmbeddingModel != nil && len(vec) > 0 {
		key.Model = *q.EmbeddingModel
	} else if vec, key.Model, err = s.Embed(ctx, Ticket{ID: q.ID, OrgID: orgID, Subject: q.Subject, Body: q.Description}); err != nil {
		return nil, err
	}
	if err := s.ensureLoaded(ctx, key); err != nil {
		return nil, err
	}
	hits := s.index.Search(key, vec, max(minCandidates, candidatesPerResult*k), func(id uuid.UUID) bool { return id == ticketID })
	if len(hits) == 0 {
		return []SimilarTicket{}, nil
	}
	ids := make([]uuid.UUID, len(hits))
	sim := make(map[uuid.UUID]float32, len(hits))
	for i, h := range hits {
		ids[i], sim[h.ID] = h.ID, h.Score
	}
	var rows []SimilarTicket
	// Scoped to the organisation again: the index is partitioned by it,
	// and this keeps any mistake there from leaking a row.
	err = s.db.WithContext(ctx).Raw(`SELECT t.id AS ticket_id, t.number, t.subject, t.status, t.priority, t.category,
			t.service_id, t.resolved_at,
			t.status IN ('resolved', 'closed') AS resolved,
			CASE WHEN t.status IN ('resolved', 'closed') THEN coalesce((
				SELECT c.content FROM comments c JOIN users u ON u.id = c.author_id AND u.org_id = c.org_id
				WHERE c.org_id = t.org_id AND c.ticket_id = t.id AND NOT c.is_internal
					AND u.role IN ('agent', 'manager', 'admin')
				ORDER BY c.created_at DESC, c.id DESC LIMIT 1), '') ELSE '' END AS resolution
		FROM tickets t WHERE t.org_id = ? AND t.id IN ?`, orgID, ids).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("ai: similar tickets: %w", err)
	}
	model, err := s.Model(ctx, orgID)
	if err != nil {
		s.log.WarnContext(ctx, "ai: organisation model unavailable; ranking by similarity alone", "org_id", orgID, "err", err)
		model = nil
	}
	var cm *classify.Model
	label := func(r *SimilarTicket) string { return "" }
	switch {
	case model != nil && model.Category != nil:
		cm, label = model.Category, func(r *SimilarTicket) string { return deref(r.Category) }
	case model != nil && model.Service != nil:
		cm, label = model.Service, func(r *SimilarTicket) string {
			if r.ServiceID == nil {
				return ""
			}
			return r.ServiceID.String()
		}
	}
	var probs []float64
	if cm != nil {
		probs = cm.Prob(textvec.Features(text))
	}
	cands := make([]Candidate, len(rows))
	for i := range rows {
		rows[i].Similarity = sim[rows[i].TicketID]
		cands[i] = Candidate{Similarity: rows[i].Similarity, Label: label(&rows[i]), Resolved: rows[i].Resolved}
	}
	for i, sc := range RankScores(cands, cm, probs) {
		rows[i].rank = sc
		rows[i].Resolution = excerpt(rows[i].Resolution, 1000)
		rows[i].PossibleDuplicate = !rows[i].Resolved && rows[i].Status != models.StatusCancelled &&
			rows[i].Similarity >= DuplicateSimilarity
	}
	slices.SortStableFunc(rows, func(a, b SimilarTicket) int { return cmp.Compare(b.rank, a.rank) })
	rows = rows[:min(k, len(rows))]
	// The k nearest, resolved ones first (they carry an answer).
	slices.SortStableFunc(rows, func(a, b SimilarTicket) int {
		if a.Resolved != b.Resolved {
			if a.Resolved {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.rank, a.rank)
	})
	return rows, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// KBSuggestion is a knowledge-base article suggested for a ticket.
type KBSuggestion struct {
	ArticleID uuid.UUID `json:"article_id"`
	Title     string    `json:"title"`
	Slug      string    `json:"slug"`
	Score     float32   `json:"score"`
	Excerpt   string    `json:"excerpt"`
	content   string
}

// kbCache holds each organisation's published articles with their vectors.
type kbCache struct {
	mu   sync.Mutex
	orgs map[uuid.UUID]*kbEntry
}

type kbEntry struct {
	articles []kbArticle
	vecs     map[string][]float32 // article id + updated_at → vector (current revisions only)
	read     time.Time
}

type kbArticle struct {
	ID        uuid.UUID
	Title     string
	Slug      string
	Content   string
	UpdatedAt time.Time
	vec       []float32
}

// maxKBArticles bounds the articles compared per organisation (the most
// recently updated ones).
const maxKBArticles = 5000

func (s *Service) kbArticles(ctx context.Context, orgID uuid.UUID) ([]kbArticle, error) {
	s.kb.mu.Lock()
	e := s.kb.orgs[orgID]
	s.kb.mu.Unlock()
	if e != nil && s.now().Sub(e.read) < s.cfg.CacheTTL {
		return e.articles, nil
	}
	var rows []kbArticle
	// Public articles only: they ground reply drafts a customer may read,
	// so an internal (staff-only) article must never be quoted from.
	err := s.db.WithContext(ctx).Raw(`SELECT id, title, slug, content, updated_at FROM kb_articles
		WHERE org_id = ? AND is_published AND visibility = 'public' ORDER BY updated_at DESC LIMIT ?`, orgID, maxKBArticles).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("ai: kb articles: %w", err)
	}
	// Vectors of unchanged articles are kept; those of old revisions go.
	var old map[string][]float32
	if e != nil {
		old = e.vecs
	}
	vecs := make(map[string][]float32, len(rows))
	for i := range rows {
		rev := rows[i].ID.String() + rows[i].UpdatedAt.Format(time.RFC3339Nano)
		v, ok := old[rev]
		if !ok {
			v = EmbedText(rows[i].Title + "\n" + rows[i].Title + "\n" + rows[i].Content)
		}
		vecs[rev], rows[i].vec = v, v
	}
	s.kb.mu.Lock()
	s.kb.orgs[orgID] = &kbEntry{articles: rows, vecs: vecs, read: s.now()}
	s.kb.mu.Unlock()
	return rows, nil
}

// SuggestKB returns up to k published articles of the organisation that
// fit the ticket: built-in vector similarity, plus a boost for articles
// the full-text search matches.
func (s *Service) SuggestKB(ctx context.Context, orgID, ticketID uuid.UUID, k int) ([]KBSuggestion, error) {
	q, err := s.loadQuery(ctx, orgID, ticketID)
	if err != nil {
		return nil, err
	}
	return s.suggestKB(ctx, orgID, q.Subject+"\n"+q.Description, k)
}

// minKBScore: articles less similar than this are not suggested.
const minKBScore = 0.1

func (s *Service) suggestKB(ctx context.Context, orgID uuid.UUID, text string, k int) ([]KBSuggestion, error) {
	k = min(max(k, 1), 20)
	arts, err := s.kbArticles(ctx, orgID)
	if err != nil || len(arts) == 0 {
		return []KBSuggestion{}, err
	}
	var fts []uuid.UUID
	if err := s.db.WithContext(ctx).Raw(`SELECT id FROM kb_articles
		WHERE org_id = ? AND is_published AND visibility = 'public' AND search @@ plainto_tsquery('simple', ?)
		ORDER BY ts_rank(search, plainto_tsquery('simple', ?)) DESC LIMIT 20`, orgID, excerpt(text, 500), excerpt(text, 500)).
		Scan(&fts).Error; err != nil {
		return nil, fmt.Errorf("ai: kb search: %w", err)
	}
	qv := EmbedText(text)
	out := make([]KBSuggestion, 0, len(arts))
	for _, a := range arts {
		sc := textvec.Dot(qv, a.vec)
		if slices.Contains(fts, a.ID) {
			sc += 0.1
		}
		if sc < minKBScore {
			continue
		}
		out = append(out, KBSuggestion{ArticleID: a.ID, Title: a.Title, Slug: a.Slug, Score: sc,
			Excerpt: excerpt(a.Content, 300), content: a.Content})
	}
	slices.SortStableFunc(out, func(a, b KBSuggestion) int { return cmp.Compare(b.Score, a.Score) })
	return out[:min(k, len(out))], nil
}

// DraftFor writes a reply draft for the ticket as staff user userID sees
// it: grounded on the ticket's public comments, the suggested KB articles,
// the canned responses the user may use and (for Ollama) the resolutions
// of similar resolved tickets. Internal notes are never read.
func (s *Service) DraftFor(ctx context.Context, orgID, ticketID, userID uuid.UUID) (Draft, error) {
	q, err := s.loadQuery(ctx, orgID, ticketID)
	if err != nil {
		return Draft{}, err
	}
	text := q.Subject + "\n" + q.Description
	in := DraftInput{Ticket: Ticket{ID: q.ID, OrgID: orgID, Subject: q.Subject, Body: q.Description}}
	if err := s.db.WithContext(ctx).Raw(`SELECT content FROM (
			SELECT content, created_at, id FROM comments
			WHERE org_id = ? AND ticket_id = ? AND NOT is_internal
			ORDER BY created_at DESC, id DESC LIMIT 10) c ORDER BY created_at, id`, orgID, ticketID).
		Scan(&in.Conversation).Error; err != nil {
		return Draft{}, fmt.Errorf("ai: draft conversation: %w", err)
	}
	kb, err := s.suggestKB(ctx, orgID, text, 3)
	if err != nil {
		return Draft{}, err
	}
	for _, a := range kb {
		in.Grounding = append(in.Grounding, Grounding{Kind: "kb_article", ID: a.ArticleID, Title: a.Title, Text: a.content, Score: a.Score})
	}
	var canned []struct {
		ID      uuid.UUID
		Title   string
		Content string
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT id, title, content FROM canned_responses
		WHERE org_id = ? AND (is_shared OR created_by = ?) ORDER BY updated_at DESC LIMIT 500`, orgID, userID).
		Scan(&canned).Error; err != nil {
		return Draft{}, fmt.Errorf("ai: canned responses: %w", err)
	}
	qv := EmbedText(text)
	for _, c := range canned {
		sc := textvec.Dot(qv, EmbedText(c.Title+"\n"+c.Title+"\n"+c.Content))
		in.Grounding = append(in.Grounding, Grounding{Kind: "canned_response", ID: c.ID, Title: c.Title, Text: c.Content, Score: sc})
	}
	st, _, err := s.Org(ctx, orgID)
	if err != nil {
		return Draft{}, err
	}
	if st.Provider == ProviderOllama {
		similar, err := s.Similar(ctx, orgID, ticketID, 3)
		if err != nil {
			return Draft{}, err
		}
		for _, t := range similar {
			if t.Resolved && strings.TrimSpace(t.Resolution) != "" {
				in.Grounding = append(in.Grounding, Grounding{Kind: "ticket", ID: t.TicketID,
					Title: fmt.Sprintf("#%d %s", t.Number, t.Subject), Text: t.Resolution, Score: t.Similarity})
			}
		}
	}
	slices.SortStableFunc(in.Grounding, func(a, b Grounding) int { return cmp.Compare(b.Score, a.Score) })
	return s.WriteDraft(ctx, orgID, in)
}
