// Package workers runs the asynq stage handlers: one asynq server per queue,
// each with its own concurrency, so an SRE sizes every stage on its own
// (`atumdesk worker --queues dedup=2,triage=8`). Every handler is
// idempotent: asynq delivers at least once.
package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/atumdesk/atumdesk/pipeline"
)

// MaxConcurrency bounds one queue's pool in one process.
const MaxConcurrency = 1000

// Config configures Run. Zero values get the defaults noted.
type Config struct {
	Redis  asynq.RedisConnOpt // e.g. asynq.ParseRedisURI(cfg.RedisURL)
	Queues map[string]int     // queue → concurrency, e.g. from ParseQueues
	Deps   Deps               // for the Registry's handlers
	// Handlers replaces Registry(Deps) (tests substitute their own).
	Handlers   Handlers
	Logger     *slog.Logger          // nil: discarded
	Registerer prometheus.Registerer // nil: no metrics
	// RetryBase and RetryMax shape the backoff between attempts of a
	// failed task: RetryBase·2^n with jitter, capped at RetryMax
	// (default 2 s and 10 min).
	RetryBase, RetryMax time.Duration
	// PollInterval is how often an idle server looks for new tasks and
	// moves due retries to pending (default: asynq's 1 s and 5 s).
	PollInterval time.Duration
	// DepthInterval is how often the queue gauges are refreshed (default 15 s).
	DepthInterval time.Duration
	// ShutdownTimeout is how long running tasks may finish on shutdown
	// before they are handed back to the queue (default 8 s).
	ShutdownTimeout time.Duration
	// Task holds the options of the one-event tasks a failed event of a
	// batch task is handed on as (the dispatcher's defaults when zero).
	Task pipeline.TaskOptions
}

// DefaultQueues is every queue of pipeline.Graph with a pool of 4: what
// `all` runs when no sizes are given.
func DefaultQueues() map[string]int {
	out := map[string]int{}
	for _, s := range pipeline.Graph {
		out[s.Queue] = 4
	}
	return out
}

// ParseQueues parses "dedup=2,triage=8" into queue → concurrency. Queues
// must be known (pipeline.Queues), listed once, with a concurrency of
// 1..MaxConcurrency.
func ParseQueues(spec string) (map[string]int, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, fmt.Errorf("workers: no queues given; want queue=concurrency[,queue=concurrency…] with queues from %s", strings.Join(pipeline.Queues, ", "))
	}
	out := map[string]int{}
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		name, num, ok := strings.Cut(item, "=")
		name, num = strings.TrimSpace(name), strings.TrimSpace(num)
		switch {
		case item == "":
			return nil, fmt.Errorf("workers: empty entry in queue list %q", spec)
		case !ok:
			return nil, fmt.Errorf("workers: %q: want queue=concurrency, e.g. dedup=2", item)
		case !pipeline.KnownQueue(name):
			return nil, fmt.Errorf("workers: unknown queue %q; known queues: %s", name, strings.Join(pipeline.Queues, ", "))
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("workers: queue %q listed twice", name)
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > MaxConcurrency {
			return nil, fmt.Errorf("workers: queue %q: concurrency %q is not a number in 1..%d", name, num, MaxConcurrency)
		}
		out[name] = n
	}
	return out, nil
}

// Run runs one asynq server per queue of cfg.Queues until ctx is cancelled,
// then shuts them all down (running tasks get ShutdownTimeout to finish,
// then go back to their queue) and returns nil. A queue without handlers
// (its stage has not arrived yet) is skipped with a warning; it is an error
// when no queue is left.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Redis == nil {
		return errors.New("workers: Redis is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Handlers == nil {
		if cfg.Deps.Redis == nil {
			cfg.Deps.Redis = cfg.Redis
		}
		if cfg.Deps.Registerer == nil {
			cfg.Deps.Registerer = cfg.Registerer
		}
		cfg.Handlers = Registry(cfg.Deps)
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 2 * time.Second
	}
	if cfg.RetryMax < cfg.RetryBase {
		cfg.RetryMax = max(10*time.Minute, cfg.RetryBase)
	}
	if cfg.DepthInterval <= 0 {
		cfg.DepthInterval = 15 * time.Second
	}

	var queues []string
	for _, q := range slices.Sorted(maps.Keys(cfg.Queues)) {
		n := cfg.Queues[q]
		switch {
		case !pipeline.KnownQueue(q):
			return fmt.Errorf("workers: unknown queue %q", q)
		case n < 1 || n > MaxConcurrency:
			return fmt.Errorf("workers: queue %q: concurrency %d not in 1..%d", q, n, MaxConcurrency)
		case len(cfg.Handlers[q]) == 0:
			log.Warn("workers: queue has no stage handlers yet; not serving it", "queue", q)
			continue
		}
		queues = append(queues, q)
	}
	if len(queues) == 0 {
		return errors.New("workers: no queue to serve (none given, or none has handlers)")
	}

	var m *taskMetrics
	if cfg.Registerer != nil {
		var err error
		if m, err = newMetrics(cfg.Registerer); err != nil {
			return fmt.Errorf("workers: metrics: %w", err)
		}
	}

	client := asynq.NewClient(cfg.Redis)
	defer client.Close()
	split := &splitter{client: client, opts: cfg.Task, delay: cfg.RetryBase, log: log}

	// Tasks keep the values of ctx but not its cancellation: on shutdown
	// asynq lets them finish within ShutdownTimeout, then cancels them.
	base := context.WithoutCancel(ctx)
	servers := make([]*asynq.Server, 0, len(queues))
	shutdown := func() {
		var wg sync.WaitGroup
		for _, s := range servers {
			wg.Go(s.Shutdown) // in parallel: each may wait ShutdownTimeout
		}
		wg.Wait()
	}
	for _, q := range queues {
		qlog := log.With("queue", q)
		srv := asynq.NewServer(cfg.Redis, asynq.Config{
			Concurrency:              cfg.Queues[q],
			Queues:                   map[string]int{q: 1},
			BaseContext:              func() context.Context { return base },
			RetryDelayFunc:           retryDelay(cfg.RetryBase, cfg.RetryMax),
			ErrorHandler:             errorLogger(qlog),
			Logger:                   asynqLogger{qlog.With("component", "asynq")},
			LogLevel:                 asynqLevel(log),
			TaskCheckInterval:        cfg.PollInterval,
			DelayedTaskCheckInterval: cfg.PollInterval,
			ShutdownTimeout:          cfg.ShutdownTimeout,
			HealthCheckFunc: func(err error) {
				if err != nil {
					qlog.Warn("workers: redis health check failed", "err", err)
				}
			},
		})
		mux := asynq.NewServeMux()
		if m != nil {
			mux.Use(m.middleware(q))
		}
		for typ, h := range cfg.Handlers[q] {
			mux.Handle(typ, split.wrap(q, h))
		}
		if err := srv.Start(mux); err != nil {
			shutdown()
			return fmt.Errorf("workers: start queue %s: %w", q, err)
		}
		servers = append(servers, srv)
		qlog.Info("workers: serving queue", "concurrency", cfg.Queues[q], "task_types", slices.Sorted(maps.Keys(cfg.Handlers[q])))
	}

	var depthDone chan struct{}
	depthCtx, stopDepth := context.WithCancel(ctx)
	if m != nil {
		insp := asynq.NewInspector(cfg.Redis)
		depthDone = make(chan struct{})
		go func() {
			defer close(depthDone)
			defer insp.Close()
			m.reportDepth(depthCtx, insp, queues, cfg.DepthInterval, log)
		}()
	}

	<-ctx.Done()
	stopDepth()
	shutdown()
	if depthDone != nil {
		<-depthDone
	}
	return nil
}

// retryDelay is exponential backoff with jitter: base·2^n, capped at hi,
// then drawn from [d/2, d) so retries of tasks that failed together (a
// database outage) spread out.
func retryDelay(base, hi time.Duration) asynq.RetryDelayFunc {
	return func(n int, _ error, _ *asynq.Task) time.Duration {
		d := base
		for i := 0; i < n && d < hi; i++ {
			d *= 2
		}
		d = min(d, hi)
		return d/2 + rand.N(d/2+1)
	}
}

// errorLogger logs each failed run; the last one before archiving as an error.
func errorLogger(log *slog.Logger) asynq.ErrorHandler {
	return asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
		id, _ := asynq.GetTaskID(ctx)
		retried, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		if retried >= maxRetry || errors.Is(err, asynq.SkipRetry) {
			log.ErrorContext(ctx, "task failed for good; archived", "task_type", t.Type(), "task_id", id, "retried", retried, "err", err)
			return
		}
		log.WarnContext(ctx, "task failed; will retry", "task_type", t.Type(), "task_id", id, "retried", retried, "max_retry", maxRetry, "err", err)
	})
}
