package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/frontend"
	"github.com/atumdesk/atumdesk/httpapi"
	"github.com/atumdesk/atumdesk/ingest"
	"github.com/atumdesk/atumdesk/ingest/imap"
	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/internal/auth"
	"github.com/atumdesk/atumdesk/internal/config"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/lifecycle"
	"github.com/atumdesk/atumdesk/internal/mailthread"
	"github.com/atumdesk/atumdesk/internal/metrics"
	"github.com/atumdesk/atumdesk/internal/netguard"
	"github.com/atumdesk/atumdesk/internal/secretbox"
	"github.com/atumdesk/atumdesk/internal/session"
	"github.com/atumdesk/atumdesk/internal/storage"
	"github.com/atumdesk/atumdesk/internal/stream"
	"github.com/atumdesk/atumdesk/internal/tickets"
	"github.com/atumdesk/atumdesk/migrations"
	"github.com/atumdesk/atumdesk/pipeline"
	"github.com/atumdesk/atumdesk/workers"
	"github.com/atumdesk/atumdesk/workers/notify"
	"github.com/atumdesk/atumdesk/workers/sla"
)

// env is the shared infrastructure of a process: connections opened once
// and handed explicitly to each role.
type env struct {
	cfg          *config.Config
	log          *slog.Logger
	db           *gorm.DB
	sqlDB        *sql.DB
	rdb          *redis.Client
	metrics      *metrics.Registry
	brokers      []string
	broker       *pipeline.Broker // the embedded broker, when this process runs it
	kafkaMetrics *pipeline.Metrics
	aiSvc        *ai.Service // one per process, shared by the API and the workers
	closers      []func()
}

func (e *env) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

// openEnv connects to PostgreSQL and Redis and, with embedKafka and no
// KAFKA_BROKERS, starts the in-process Kafka-protocol broker.
func openEnv(ctx context.Context, cfg *config.Config, log *slog.Logger, embedKafka bool) (*env, error) {
	e := &env{cfg: cfg, log: log, metrics: metrics.New(), brokers: cfg.KafkaBrokers}
	var err error
	e.db, e.sqlDB, err = database.Open(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConn)
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() { _ = e.sqlDB.Close() })
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		e.close()
		return nil, fmt.Errorf("redis: %w", err)
	}
	e.rdb = redis.NewClient(opts)
	e.closers = append(e.closers, func() { _ = e.rdb.Close() })
	if cfg.EmbeddedKafka() {
		if !embedKafka {
			e.close()
			return nil, errors.New("ATUMDESK_KAFKA_BROKERS is empty: only `atumdesk all` runs the embedded broker; point this role at it (e.g. 127.0.0.1:19092)")
		}
		e.broker, err = pipeline.StartBroker(ctx, pipeline.BrokerConfig{DataDir: cfg.KafkaDataDir, Addr: cfg.KafkaEmbedAddr, Logger: log,
			Fsync: cfg.KafkaEmbedFsync})
		if err != nil {
			e.close()
			return nil, fmt.Errorf("embedded kafka: %w", err)
		}
		e.brokers = e.broker.Addrs()
		e.closers = append(e.closers, e.broker.Close)
		log.Info("embedded Kafka-protocol broker started", "addrs", e.brokers, "data_dir", cfg.KafkaDataDir)
	}
	return e, nil
}

// prepare readies a role that produces to Kafka: migrations applied
// (apply) or none pending, the topics created if missing (each role makes
// sure, so none waits for another process to start first), and the
// process's producer.
func (e *env) prepare(ctx context.Context, apply bool) (*pipeline.Producer, error) {
	if err := e.migrateOrRefuse(ctx, apply); err != nil {
		return nil, err
	}
	if err := pipeline.EnsureTopics(ctx, e.brokers, pipeline.DefaultTopics(e.cfg.KafkaReplication)); err != nil {
		return nil, err
	}
	return e.producer()
}

// producer returns the process's one Kafka producer (closed with env).
func (e *env) producer() (*pipeline.Producer, error) {
	if e.kafkaMetrics == nil {
		m, err := pipeline.NewMetrics(e.metrics.Reg)
		if err != nil {
			return nil, err
		}
		e.kafkaMetrics = m
	}
	p := pipeline.NewProducer(e.brokers, pipeline.WithMetrics(e.kafkaMetrics), pipeline.WithLogger(e.log))
	e.closers = append(e.closers, func() { _ = p.Close() })
	return p, nil
}

// migrateOrRefuse applies pending migrations when apply is set; otherwise a
// pending migration stops start-up with a clear message.
func (e *env) migrateOrRefuse(ctx context.Context, apply bool) error {
	if apply {
		if err := migrations.Up(ctx, e.sqlDB); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		return nil
	}
	n, err := migrations.Pending(ctx, e.sqlDB)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("the database has %d pending migration(s): run `atumdesk migrate up` or start with -migrate", n)
	}
	return nil
}

// jwtSecret is ATUMDESK_JWT_SECRET or, when unset, a random secret kept in
// Redis (set once, shared by every process of the deployment).
func (e *env) jwtSecret(ctx context.Context) ([]byte, error) {
	if e.cfg.JWTSecret != "" {
		return []byte(e.cfg.JWTSecret), nil
	}
	b := make([]byte, 48)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	const key = "atumdesk:jwt_secret"
	if err := e.rdb.SetNX(ctx, key, base64.StdEncoding.EncodeToString(b), 0).Err(); err != nil {
		return nil, fmt.Errorf("redis: store jwt secret: %w", err)
	}
	s, err := e.rdb.Get(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: read jwt secret: %w", err)
	}
	return base64.StdEncoding.DecodeString(s)
}

// readyChecks are what /readyz probes.
func (e *env) readyChecks(producer *pipeline.Producer) []httpapi.ReadyCheck {
	return []httpapi.ReadyCheck{
		{Name: "postgres", Check: func(ctx context.Context) error { return database.Ping(ctx, e.sqlDB) }},
		{Name: "migrations", Check: func(ctx context.Context) error {
			n, err := migrations.Pending(ctx, e.sqlDB)
			if err == nil && n > 0 {
				err = fmt.Errorf("%d pending", n)
			}
			return err
		}},
		{Name: "redis", Check: func(ctx context.Context) error { return e.rdb.Ping(ctx).Err() }},
		{Name: "kafka", Check: producer.Ping},
	}
}

// addAPI adds the HTTP server to g.
func (e *env) addAPI(ctx context.Context, g *lifecycle.Group, producer *pipeline.Producer) error {
	secret, err := e.jwtSecret(ctx)
	if err != nil {
		return err
	}
	tokens, err := auth.NewTokens(secret, e.cfg.AccessTokenTTL)
	if err != nil {
		return err
	}
	sessions := session.New(e.db, e.rdb, tokens, session.Config{
		RefreshTTL: e.cfg.RefreshTokenTTL, MaxFailures: e.cfg.LoginMaxFails, Window: e.cfg.LoginWindow,
	})
	files, err := storage.NewLocal(e.cfg.StorageDir)
	if err != nil {
		return err
	}
	// The SSE hub reads every event of the events topic (each api replica
	// reads all of them) and routes each to its audience.
	hub := stream.NewHub(stream.Config{Brokers: e.brokers, MaxPerUser: e.cfg.StreamMaxPerUser, MaxPerOrg: e.cfg.StreamMaxPerOrg,
		MaxPerIP: e.cfg.StreamMaxPerIP, Retention: e.cfg.StreamRetention, RingEvents: e.cfg.StreamRingEvents,
		Logger: e.log, Registerer: e.metrics.Reg})
	secrets, err := e.secrets()
	if err != nil {
		return err
	}
	aiSvc, err := e.ai()
	if err != nil {
		return err
	}
	guard, err := netguard.New(e.cfg.IMAPAllowHosts)
	if err != nil {
		return err
	}
	srv := httpapi.New(httpapi.Deps{
		AI:        aiSvc,
		Stream:    hub,
		Secrets:   secrets,
		IMAPGuard: guard,
		Config: httpapi.Config{CookieSecure: e.cfg.CookieSecure, TrustedProxies: e.cfg.TrustedProxyPrefixes,
			ReopenWindow: e.cfg.ReopenWindow, AttachmentMaxBytes: e.cfg.AttachmentMaxBytes},
		Files: files,
		Web:   frontend.Dist(),
		Log:   e.log, DB: e.db, Redis: e.rdb, Tokens: tokens, Sessions: sessions, Metrics: e.metrics,
		Ready:  e.readyChecks(producer),
		Intake: ingest.New(e.db, e.rdb, producer, e.log),
		Tasks:  asynq.NewInspectorFromRedisClient(e.rdb),
	})
	hs := &http.Server{
		Addr:              e.cfg.HTTPAddr,
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Minute, // a 50 MB upload on a slow link; SSE clears its own deadlines
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelWarn),
	}
	hs.RegisterOnShutdown(hub.Shutdown) // open streams end, so Shutdown need not wait them out
	g.Add("sse", hub.Run)
	// Similar-ticket search answers from an in-memory index: loaded from
	// PostgreSQL, then kept current from the embed stage's events.
	g.Add("ai-index", func(ctx context.Context) error {
		if err := aiSvc.LoadIndex(ctx); err != nil {
			e.log.Warn("ai: index load failed; it fills from events", "err", err)
		}
		return aiSvc.RunIndexSync(ctx, ai.SyncConfig{Brokers: e.brokers})
	})
	g.Add("http", func(ctx context.Context) error { return serveHTTP(ctx, hs, e.cfg.ShutdownTimeout, e.log) })
	return nil
}

// serveHTTP serves until ctx is done, then stops accepting and lets
// in-flight requests finish within timeout.
func serveHTTP(ctx context.Context, hs *http.Server, timeout time.Duration, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	log.Info("http listening", "addr", hs.Addr)
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

func runAPI(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string) error {
	fs := newFlagSet("api")
	migrate := fs.Bool("migrate", false, "apply pending migrations before serving")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	e, err := openEnv(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer e.close()
	// No topic creation here: the API keeps serving (intake answers 503)
	// while Kafka is unreachable.
	if err := e.migrateOrRefuse(ctx, *migrate); err != nil {
		return err
	}
	producer, err := e.producer()
	if err != nil {
		return err
	}
	g := lifecycle.New(log, cfg.ShutdownTimeout)
	if err := e.addAPI(ctx, g, producer); err != nil {
		return err
	}
	return g.Run(ctx)
}

func runAll(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	e, err := openEnv(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	defer e.close()
	producer, err := e.prepare(ctx, true)
	if err != nil {
		return err
	}
	// Added in dependency order; they stop in reverse: the API first, the
	// workers last (the broker closes with env).
	g := lifecycle.New(log, cfg.ShutdownTimeout)
	if err := e.addWorkers(ctx, g, workers.DefaultQueues()); err != nil {
		return err
	}
	if err := e.addPipeline(g, producer); err != nil {
		return err
	}
	if err := e.addIMAP(ctx, g, producer); err != nil {
		return err
	}
	if err := e.addAPI(ctx, g, producer); err != nil {
		return err
	}
	return g.Run(ctx)
}

// runPipeline runs the Kafka consumers: the persister (inbound topic →
// PostgreSQL), the outbox relay (→ events topic) and the stage dispatcher
// (events → asynq queues). Several may run; Kafka consumer groups and
// SKIP LOCKED share the work.
func runPipeline(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	e, err := openEnv(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer e.close()
	producer, err := e.prepare(ctx, false)
	if err != nil {
		return err
	}
	g := lifecycle.New(log, cfg.ShutdownTimeout)
	if err := e.addPipeline(g, producer); err != nil {
		return err
	}
	return e.serveMetrics(ctx, g, cfg.MetricsAddr)
}

// runWorker runs one asynq server per queue with the given pool sizes.
func runWorker(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string) error {
	fs := newFlagSet("worker")
	spec := fs.String("queues", "", "pools per queue, e.g. dedup=2,triage=8 (default: every queue with 4)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	queues := workers.DefaultQueues()
	if *spec != "" {
		var err error
		if queues, err = workers.ParseQueues(*spec); err != nil {
			return usageError{err}
		}
	}
	e, err := openEnv(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.migrateOrRefuse(ctx, false); err != nil {
		return err
	}
	g := lifecycle.New(log, cfg.ShutdownTimeout)
	if err := e.addWorkers(ctx, g, queues); err != nil {
		return err
	}
	return e.serveMetrics(ctx, g, cfg.MetricsAddr)
}

// serveMetrics adds a /metrics listener (roles without the API) and runs g.
func (e *env) serveMetrics(ctx context.Context, g *lifecycle.Group, addr string) error {
	if addr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", e.metrics.Handler())
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ok"}`)) })
		hs := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		g.Add("metrics", func(ctx context.Context) error { return serveHTTP(ctx, hs, e.cfg.ShutdownTimeout, e.log) })
	}
	return g.Run(ctx)
}

func (e *env) asynqRedis() (asynq.RedisConnOpt, error) {
	opt, err := asynq.ParseRedisURI(e.cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("asynq redis: %w", err)
	}
	return opt, nil
}

// addPipeline adds the persister, the outbox relay and its sweeper, and
// the stage dispatcher.
func (e *env) addPipeline(g *lifecycle.Group, producer *pipeline.Producer) error {
	redisOpt, err := e.asynqRedis()
	if err != nil {
		return err
	}
	persister, err := pipeline.NewPersister(e.db, e.log, e.metrics.Reg)
	if err != nil {
		return err
	}
	consumer := pipeline.ConsumerConfig{Brokers: e.brokers, Logger: e.log, Metrics: e.kafkaMetrics}
	g.Add("outbox-relay", func(ctx context.Context) error {
		return pipeline.RunRelay(ctx, pipeline.RelayConfig{DB: e.db, Producer: producer, Logger: e.log, Registerer: e.metrics.Reg})
	})
	g.Add("outbox-sweeper", func(ctx context.Context) error {
		return pipeline.RunSweeper(ctx, pipeline.SweeperConfig{DB: e.db, Logger: e.log})
	})
	g.Add("dispatcher", func(ctx context.Context) error {
		return pipeline.RunDispatcher(ctx, pipeline.DispatcherConfig{Brokers: e.brokers, Redis: redisOpt, Logger: e.log, Metrics: e.kafkaMetrics})
	})
	g.Add("persister", func(ctx context.Context) error { return pipeline.RunPersister(ctx, consumer, persister) })
	return nil
}

// ai returns the process's AI service (providers, classifiers, vector
// index), built once.
func (e *env) ai() (*ai.Service, error) {
	if e.aiSvc == nil {
		svc, err := ai.NewFromConfig(e.cfg, e.db, e.rdb, e.log, e.metrics.Reg)
		if err != nil {
			return nil, err
		}
		e.aiSvc = svc
	}
	return e.aiSvc, nil
}

// secrets is the sealing key for stored secrets (mailbox passwords); nil
// when ATUMDESK_SECRET_KEY is unset.
func (e *env) secrets() (*secretbox.Box, error) {
	if e.cfg.SecretKey == "" {
		return nil, nil
	}
	b, err := secretbox.FromBase64(e.cfg.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("ATUMDESK_SECRET_KEY: %w", err)
	}
	return b, nil
}

// addIMAP adds the mailbox pollers: each active mailbox is polled by one
// imap process (a lease in its row), and every message goes through ingest:
// threaded onto its ticket as a comment, or submitted as a new ticket.
func (e *env) addIMAP(ctx context.Context, g *lifecycle.Group, producer *pipeline.Producer) error {
	secrets, err := e.secrets()
	if err != nil {
		return err
	}
	tlsCfg, err := imap.TLSConfig(e.cfg.IMAPCAFile)
	if err != nil {
		return err
	}
	guard, err := netguard.New(e.cfg.IMAPAllowHosts)
	if err != nil {
		return err
	}
	// Reply tokens are signed with the JWT secret, as the notify stage
	// signs them.
	secret, err := e.jwtSecret(ctx)
	if err != nil {
		return err
	}
	files, err := storage.NewLocal(e.cfg.StorageDir)
	if err != nil {
		return err
	}
	sink, err := ingest.New(e.db, e.rdb, producer, e.log).MailSink(ingest.MailConfig{Signer: mailthread.NewSigner(secret),
		Tickets: tickets.New(e.db, tickets.Config{ReopenWindow: e.cfg.ReopenWindow}), Registerer: e.metrics.Reg,
		Files: storage.NewAttachments(files, e.cfg.AttachmentMaxBytes)})
	if err != nil {
		return err
	}
	g.Add("imap", func(ctx context.Context) error {
		return imap.Run(ctx, imap.Config{DB: e.db, Sink: sink, Secrets: secrets, Logger: e.log, Metrics: e.metrics.Reg,
			StorageDir: e.cfg.MailRawDir, TLS: tlsCfg, Guard: guard, LeaseTTL: e.cfg.IMAPLeaseTTL, MaxMailboxes: e.cfg.IMAPMaxMailboxes,
			PollInterval: e.cfg.IMAPPollInterval})
	})
	return nil
}

// runIMAP polls the configured mailboxes.
func runIMAP(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	e, err := openEnv(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer e.close()
	// Mail that cannot be produced is quarantined after a few tries:
	// prepare makes sure the topics exist.
	producer, err := e.prepare(ctx, false)
	if err != nil {
		return err
	}
	g := lifecycle.New(log, cfg.ShutdownTimeout)
	if err := e.addIMAP(ctx, g, producer); err != nil {
		return err
	}
	return e.serveMetrics(ctx, g, cfg.MetricsAddr)
}

// addWorkers adds the asynq pools.
func (e *env) addWorkers(ctx context.Context, g *lifecycle.Group, queues map[string]int) error {
	redisOpt, err := e.asynqRedis()
	if err != nil {
		return err
	}
	aiSvc, err := e.ai()
	if err != nil {
		return err
	}
	var notifyCfg notify.Config
	if _, ok := queues[pipeline.QueueNotify]; ok {
		if notifyCfg, err = e.notifyConfig(ctx); err != nil {
			return err
		}
	}
	g.Add("workers", func(ctx context.Context) error {
		return workers.Run(ctx, workers.Config{Redis: redisOpt, Queues: queues, Logger: e.log, Registerer: e.metrics.Reg,
			PollInterval: e.cfg.WorkerPollInterval,
			Deps:         workers.Deps{AI: aiSvc, DB: e.db, Logger: e.log, DedupWindow: e.cfg.DedupWindow, Notify: notifyCfg}})
	})
	if _, ok := queues[pipeline.QueueSLA]; ok {
		// Re-creates SLA timers Redis may have lost; idempotent.
		g.Add("sla-reconciler", func(ctx context.Context) error {
			return sla.RunReconciler(ctx, e.db, redisOpt, e.log, 10*time.Minute)
		})
	}
	return nil
}
