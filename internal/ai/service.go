package ai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/ai/vecindex"
	"github.com/atumdesk/atumdesk/pipeline"
)

// Config configures a Service. Zero values get the defaults noted.
type Config struct {
	DB *gorm.DB
	// Redis stores the trained models (shared by every process) and
	// schedules retraining; nil keeps models in this process only.
	Redis      *redis.Client
	Logger     *slog.Logger          // nil: discarded
	Registerer prometheus.Registerer // nil: metrics not registered
	// DefaultProvider serves organisations whose settings name none
	// (default ProviderBuiltin).
	DefaultProvider string
	// Ollama configures the Ollama provider; an empty URL disables it, and
	// organisations asking for it get the built-in provider (a fallback
	// with reason "disabled").
	Ollama OllamaConfig
	// Index is the similar-ticket index (default vecindex.New).
	Index vecindex.Searcher
	// RetrainInterval: an organisation's classifiers are retrained at most
	// once per interval, after tickets were resolved (default 6 h).
	RetrainInterval time.Duration
	// MaxTrainingTickets caps the resolved tickets (newest first) one
	// training reads (default 20,000).
	MaxTrainingTickets int
	Train              TrainOptions
	// CacheTTL is how long settings, services and a model are trusted
	// before they are read again (default 30 s).
	CacheTTL time.Duration
}

// Service is the AI facade the stages and the API use.
type Service struct {
	cfg     Config
	db      *gorm.DB
	rdb     *redis.Client
	log     *slog.Logger
	m       *metrics
	builtin Builtin
	ollama  *Ollama // nil: not configured
	index   vecindex.Searcher
	tasks   *asynq.Client

	mu     sync.Mutex
	orgs   map[uuid.UUID]*orgEntry
	models map[uuid.UUID]*modelEntry
	parts  map[vecindex.Key]*partState
	kb     kbCache
	now    func() time.Time
}

// New builds the Service. It does not contact Ollama.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil {
		return nil, errors.New("ai: DB is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DefaultProvider == "" {
		cfg.DefaultProvider = ProviderBuiltin
	}
	if cfg.DefaultProvider != ProviderBuiltin && cfg.DefaultProvider != ProviderOllama {
		return nil, fmt.Errorf("ai: unknown provider %q", cfg.DefaultProvider)
	}
	if cfg.Index == nil {
		cfg.Index = vecindex.New(vecindex.Config{})
	}
	if cfg.RetrainInterval <= 0 {
		cfg.RetrainInterval = 6 * time.Hour
	}
	if cfg.MaxTrainingTickets <= 0 {
		cfg.MaxTrainingTickets = 20_000
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 30 * time.Second
	}
	m, err := newMetrics(cfg.Registerer, cfg.Index)
	if err != nil {
		return nil, fmt.Errorf("ai: metrics: %w", err)
	}
	s := &Service{cfg: cfg, db: cfg.DB, rdb: cfg.Redis, log: cfg.Logger, m: m, index: cfg.Index,
		orgs: map[uuid.UUID]*orgEntry{}, models: map[uuid.UUID]*modelEntry{}, parts: map[vecindex.Key]*partState{},
		kb: kbCache{orgs: map[uuid.UUID]*kbEntry{}}, now: time.Now}
	if cfg.Ollama.URL != "" {
		if s.ollama, err = NewOllama(cfg.Ollama); err != nil {
			return nil, err
		}
	}
	if cfg.Redis != nil {
		s.tasks = asynq.NewClientFromRedisClient(cfg.Redis)
	}
	return s, nil
}

// Index is the similar-ticket index.
func (s *Service) Index() vecindex.Searcher { return s.index }

// Settings are an organisation's AI settings (organizations.settings.ai).
type Settings struct {
	Provider string `json:"provider"`
	// AutoApply: suggestions at or above AutoApplyThreshold are applied to
	// fields no human has set (audited as the AI's change).
	AutoApply          bool    `json:"auto_apply"`
	AutoApplyThreshold float64 `json:"auto_apply_threshold"`
}

// DefaultAutoApplyThreshold applies when auto_apply_threshold is unset.
const DefaultAutoApplyThreshold = 0.9

type orgEntry struct {
	settings Settings
	services []OrgService
	read     time.Time
}

// Org returns the organisation's AI settings and active services (cached
// for CacheTTL).
func (s *Service) Org(ctx context.Context, orgID uuid.UUID) (Settings, []OrgService, error) {
	s.mu.Lock()
	e := s.orgs[orgID]
	s.mu.Unlock()
	if e != nil && s.now().Sub(e.read) < s.cfg.CacheTTL {
		return e.settings, e.services, nil
	}
	var raw struct{ AI []byte }
	if err := s.db.WithContext(ctx).Raw(`SELECT settings->'ai' AS ai FROM organizations WHERE id = ?`, orgID).Scan(&raw).Error; err != nil {
		return Settings{}, nil, fmt.Errorf("ai: settings of %s: %w", orgID, err)
	}
	st := Settings{Provider: s.cfg.DefaultProvider, AutoApplyThreshold: DefaultAutoApplyThreshold}
	if len(raw.AI) > 0 && string(raw.AI) != "null" {
		var got Settings
		if err := json.Unmarshal(raw.AI, &got); err != nil {
			s.log.WarnContext(ctx, "ai: unreadable organisation AI settings; using the defaults", "org_id", orgID, "err", err)
		} else {
			if got.Provider == ProviderBuiltin || got.Provider == ProviderOllama {
				st.Provider = got.Provider
			}
			st.AutoApply = got.AutoApply
			if got.AutoApplyThreshold > 0 && got.AutoApplyThreshold <= 1 {
				st.AutoApplyThreshold = got.AutoApplyThreshold
			}
		}
	}
	var services []OrgService
	if err := s.db.WithContext(ctx).Raw(`SELECT id, name FROM services WHERE org_id = ? AND is_active ORDER BY lower(name), id`, orgID).
		Scan(&services).Error; err != nil {
		return Settings{}, nil, fmt.Errorf("ai: services of %s: %w", orgID, err)
	}
	s.mu.Lock()
	s.orgs[orgID] = &orgEntry{settings: st, services: services, read: s.now()}
	s.mu.Unlock()
	return st, services, nil
}

// providerFor is the organisation's configured provider.
func (s *Service) providerFor(st Settings) (Provider, string) {
	if st.Provider != ProviderOllama {
		return s.builtin, ""
	}
	if s.ollama == nil {
		return s.builtin, ReasonDisabled
	}
	return s.ollama, ""
}

// run calls op on the organisation's provider and, when that fails, on the
// built-in provider, counting the fallback. Only the built-in provider's
// error (none today) is returned.
func (s *Service) run(ctx context.Context, st Settings, op string, call func(Provider) error) error {
	p, disabled := s.providerFor(st)
	if disabled != "" {
		s.m.fallbacks.WithLabelValues(op, disabled).Inc()
		s.log.WarnContext(ctx, "ai: the organisation asks for Ollama but none is configured (ATUMDESK_OLLAMA_URL); using the built-in provider", "op", op)
	}
	if p.Name() != ProviderBuiltin {
		err := s.timed(p.Name(), op, func() error { return call(p) })
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err() // our caller gave up; not the provider's fault
		}
		reason := ReasonOf(err)
		s.m.fallbacks.WithLabelValues(op, reason).Inc()
		s.log.WarnContext(ctx, "ai: provider failed; using the built-in provider", "provider", p.Name(), "op", op, "reason", reason, "err", err)
	}
	return s.timed(ProviderBuiltin, op, func() error { return call(s.builtin) })
}

func (s *Service) timed(provider, op string, fn func() error) error {
	start := time.Now()
	err := fn()
	s.m.duration.WithLabelValues(provider, op).Observe(time.Since(start).Seconds())
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	s.m.requests.WithLabelValues(provider, op, outcome).Inc()
	return err
}

// Triage suggests service, category and priority for t with the
// organisation's provider (falling back to the built-in one).
func (s *Service) Triage(ctx context.Context, t Ticket) (Suggestion, error) {
	st, services, err := s.Org(ctx, t.OrgID)
	if err != nil {
		return Suggestion{}, err
	}
	model, err := s.Model(ctx, t.OrgID)
	if err != nil {
		// Redis away: suggest from urgency cues rather than not at all.
		s.log.WarnContext(ctx, "ai: organisation model unavailable; triaging without it", "org_id", t.OrgID, "err", err)
		model = nil
	}
	in := TriageInput{Ticket: t, Services: services, Model: model}
	if model != nil && model.Category != nil {
		in.Categories = model.Category.Labels
	}
	var out Suggestion
	err = s.run(ctx, st, "triage", func(p Provider) error {
		var err error
		out, err = p.Triage(ctx, in)
		return err
	})
	return out, err
}

// Embed returns t's vector and the model that made it.
func (s *Service) Embed(ctx context.Context, t Ticket) ([]float32, string, error) {
	st, _, err := s.Org(ctx, t.OrgID)
	if err != nil {
		return nil, "", err
	}
	var vec []float32
	var model string
	err = s.run(ctx, st, "embed", func(p Provider) error {
		vecs, m, err := p.Embed(ctx, []string{t.Text()})
		if err != nil {
			return err
		}
		vec, model = vecs[0], m
		return nil
	})
	return vec, model, err
}

// ollamaConcurrency is how many calls of one batch (TriageAll, EmbedAll)
// wait on Ollama at once: a few overlap the HTTP round trips and the
// server's queueing; more would only queue in the server
// (OLLAMA_NUM_PARALLEL), eating into each call's timeout.
const ollamaConcurrency = 4

// TriageAll is Triage for tickets of one organisation, in their order:
// one call per ticket, as Triage makes it (with its fallback), a few at a
// time when they go to Ollama.
func (s *Service) TriageAll(ctx context.Context, ts []Ticket) ([]Suggestion, error) {
	out := make([]Suggestion, len(ts))
	err := s.forEach(ctx, ts, func(i int) error {
		var err error
		out[i], err = s.Triage(ctx, ts[i])
		return err
	})
	return out, err
}

// EmbedAll is Embed for tickets of one organisation, in their order, as
// TriageAll is Triage.
func (s *Service) EmbedAll(ctx context.Context, ts []Ticket) ([]TicketVector, error) {
	out := make([]TicketVector, len(ts))
	err := s.forEach(ctx, ts, func(i int) error {
		vec, model, err := s.Embed(ctx, ts[i])
		out[i] = TicketVector{TicketID: ts[i].ID, Model: model, Vec: vec}
		return err
	})
	return out, err
}

// forEach runs fn for each index of ts: one after another with the
// built-in provider (pure Go: the worker pool is the parallelism),
// ollamaConcurrency at a time with Ollama (waiting on the server). It
// returns the first error.
func (s *Service) forEach(ctx context.Context, ts []Ticket, fn func(i int) error) error {
	if len(ts) == 0 {
		return nil
	}
	st, _, err := s.Org(ctx, ts[0].OrgID)
	if err != nil {
		return err
	}
	if p, _ := s.providerFor(st); p.Name() == ProviderBuiltin || len(ts) == 1 {
		for i := range ts {
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, len(ts))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(len(ts), ollamaConcurrency) {
		wg.Go(func() {
			for i := range work {
				errs[i] = fn(i)
			}
		})
	}
	for i := range ts {
		work <- i
	}
	close(work)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// WriteDraft writes a reply draft with the organisation's provider.
func (s *Service) WriteDraft(ctx context.Context, orgID uuid.UUID, in DraftInput) (Draft, error) {
	st, _, err := s.Org(ctx, orgID)
	if err != nil {
		return Draft{}, err
	}
	var out Draft
	err = s.run(ctx, st, "draft", func(p Provider) error {
		var err error
		out, err = p.Draft(ctx, in)
		return err
	})
	return out, err
}

// --- trained models ---------------------------------------------------------

type modelEntry struct {
	model   *OrgModel
	version string
	checked time.Time
}

func modelKey(org uuid.UUID) string        { return "atumdesk:ai:model:" + org.String() }
func modelVersionKey(org uuid.UUID) string { return "atumdesk:ai:model:" + org.String() + ":version" }

// Model returns the organisation's trained model, nil when it has none
// yet (then a training is scheduled).
func (s *Service) Model(ctx context.Context, orgID uuid.UUID) (*OrgModel, error) {
	s.mu.Lock()
	e := s.models[orgID]
	s.mu.Unlock()
	now := s.now()
	if e != nil && (s.rdb == nil || now.Sub(e.checked) < s.cfg.CacheTTL) {
		return e.model, nil
	}
	if s.rdb == nil {
		return nil, nil
	}
	version, err := s.rdb.Get(ctx, modelVersionKey(orgID)).Result()
	if errors.Is(err, redis.Nil) {
		s.scheduleFirstTraining(ctx, orgID)
		return nil, nil
	}
	if err != nil {
		if e != nil { // Redis is away: keep using what we have
			return e.model, nil
		}
		return nil, fmt.Errorf("ai: model version of %s: %w", orgID, err)
	}
	if e != nil && e.version == version {
		s.mu.Lock()
		e.checked = now
		s.mu.Unlock()
		return e.model, nil
	}
	blob, err := s.rdb.Get(ctx, modelKey(orgID)).Bytes()
	if err != nil {
		return nil, fmt.Errorf("ai: model of %s: %w", orgID, err)
	}
	m := new(OrgModel)
	if err := m.UnmarshalBinary(blob); err != nil {
		s.log.WarnContext(ctx, "ai: stored model unreadable; retraining", "org_id", orgID, "err", err)
		s.scheduleFirstTraining(ctx, orgID)
		return nil, nil
	}
	s.mu.Lock()
	s.models[orgID] = &modelEntry{model: m, version: version, checked: now}
	s.mu.Unlock()
	return m, nil
}

// StoreModel makes m the organisation's model for every process.
func (s *Service) StoreModel(ctx context.Context, orgID uuid.UUID, m *OrgModel) error {
	if s.rdb != nil {
		blob, err := m.MarshalBinary()
		if err != nil {
			return err
		}
		_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, modelKey(orgID), blob, 0)
			p.Set(ctx, modelVersionKey(orgID), m.Version(), 0)
			return nil
		})
		if err != nil {
			return fmt.Errorf("ai: store model of %s: %w", orgID, err)
		}
	}
	s.mu.Lock()
	s.models[orgID] = &modelEntry{model: m, version: m.Version(), checked: s.now()}
	s.mu.Unlock()
	return nil
}

// TrainingData reads the organisation's resolved tickets, newest first.
func (s *Service) TrainingData(ctx context.Context, orgID uuid.UUID) ([]LabelledTicket, error) {
	var rows []struct {
		Subject     string
		Description string
		ServiceID   *uuid.UUID
		Category    *string
		Priority    string
	}
	err := s.db.WithContext(ctx).Raw(`SELECT subject, description, service_id, category, priority FROM tickets
		WHERE org_id = ? AND status IN ('resolved', 'closed') AND is_duplicate_of IS NULL
		ORDER BY resolved_at DESC NULLS LAST, id DESC LIMIT ?`, orgID, s.cfg.MaxTrainingTickets).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("ai: training data of %s: %w", orgID, err)
	}
	out := make([]LabelledTicket, len(rows))
	for i, r := range rows {
		out[i] = LabelledTicket{Subject: r.Subject, Body: r.Description, ServiceID: r.ServiceID, Priority: r.Priority}
		if r.Category != nil {
			out[i].Category = *r.Category
		}
	}
	return out, nil
}

// Retrain trains the organisation's classifiers on its resolved tickets and
// stores them. An organisation with too little history gets a model
// without classifiers (its triage uses urgency cues only).
func (s *Service) Retrain(ctx context.Context, orgID uuid.UUID) (*OrgModel, error) {
	data, err := s.TrainingData(ctx, orgID)
	if err != nil {
		s.m.retrains.WithLabelValues("error").Inc()
		return nil, err
	}
	m, err := TrainOrgModel(data, s.cfg.Train, s.now())
	if err != nil {
		s.m.retrains.WithLabelValues("error").Inc()
		return nil, err
	}
	if err := s.StoreModel(ctx, orgID, m); err != nil {
		s.m.retrains.WithLabelValues("error").Inc()
		return nil, err
	}
	outcome := "trained"
	if m.Service == nil && m.Category == nil && m.Priority == nil {
		outcome = "too_little_data"
	}
	s.m.retrains.WithLabelValues(outcome).Inc()
	s.log.InfoContext(ctx, "ai: organisation model trained", "org_id", orgID, "tickets", len(data), "outcome", outcome,
		"service", m.Service != nil, "category", m.Category != nil, "priority", m.Priority != nil)
	return m, nil
}

// RetrainPayload is the payload of a scheduled training task.
type RetrainPayload struct {
	OrgID uuid.UUID `json:"org_id"`
	Train bool      `json:"train"`
}

// ScheduleRetrain queues the organisation's training at the end of the
// current RetrainInterval window (at once when now is set): one task per
// organisation and window, however many tickets are resolved meanwhile.
func (s *Service) ScheduleRetrain(ctx context.Context, orgID uuid.UUID, now bool) error {
	if s.tasks == nil {
		return nil
	}
	window := s.now().Truncate(s.cfg.RetrainInterval)
	at := window.Add(s.cfg.RetrainInterval)
	id := fmt.Sprintf("ai-retrain:%s:%d", orgID, at.Unix())
	if now {
		at, id = s.now(), fmt.Sprintf("ai-retrain:%s:first:%d", orgID, window.Unix())
	}
	payload, _ := json.Marshal(RetrainPayload{OrgID: orgID, Train: true})
	_, err := s.tasks.EnqueueContext(ctx, asynq.NewTask(pipeline.TaskAIRetrain, payload),
		asynq.Queue(pipeline.QueueTriage), asynq.TaskID(id), asynq.ProcessAt(at), asynq.MaxRetry(3),
		asynq.Retention(s.cfg.RetrainInterval))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil // already scheduled for this window
	}
	if err != nil {
		return fmt.Errorf("ai: schedule retrain of %s: %w", orgID, err)
	}
	return nil
}

// scheduleFirstTraining asks for a training of an organisation that has
// no model yet; failures are only logged (triage goes on without one).
func (s *Service) scheduleFirstTraining(ctx context.Context, orgID uuid.UUID) {
	if err := s.ScheduleRetrain(ctx, orgID, true); err != nil {
		s.log.WarnContext(ctx, "ai: could not schedule a first training", "org_id", orgID, "err", err)
	}
}
