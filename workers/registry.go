package workers

import (
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/pipeline"
	"github.com/atumdesk/atumdesk/workers/dedup"
	"github.com/atumdesk/atumdesk/workers/embed"
	"github.com/atumdesk/atumdesk/workers/notify"
	"github.com/atumdesk/atumdesk/workers/sla"
	"github.com/atumdesk/atumdesk/workers/triage"
)

// Deps are what the stage handlers need.
type Deps struct {
	DB          *gorm.DB
	Logger      *slog.Logger
	DedupWindow time.Duration // 0: dedup.DefaultWindow
	// Redis is where the sla stage schedules its timers and Registerer
	// takes its metrics (Run fills both from its Config when unset).
	Redis      asynq.RedisConnOpt
	Registerer prometheus.Registerer
	// AI serves the triage and embed stages (nil: a built-in-only service
	// on DB, its models kept in the process).
	AI *ai.Service
	// Notify configures the notify stage (its Logger and Registerer
	// default to the ones above; no Mailer: nothing is sent).
	Notify notify.Config
}

// Handlers maps queue → task type → handler.
type Handlers map[string]map[string]asynq.Handler

// Registry builds every stage handler: the one place where task types meet
// their code. Each entry must match a line of pipeline.Graph and the other
// way round (TestRegistryMatchesGraph).
func Registry(d Deps) Handlers {
	return Handlers{
		pipeline.QueueDedup: {
			pipeline.TaskDedup: dedup.New(d.DB, dedup.Config{Window: d.DedupWindow, Logger: d.Logger}),
		},
		pipeline.QueueSLA:    {pipeline.TaskSLA: sla.New(d.DB, sla.Config{Redis: d.Redis, Logger: d.Logger, Registerer: d.Registerer})},
		pipeline.QueueTriage: {pipeline.TaskTriage: triage.New(d.DB, d.AI, d.Logger), pipeline.TaskAIRetrain: triage.NewRetrain(d.DB, d.AI, d.Logger)},
		pipeline.QueueEmbed:  {pipeline.TaskEmbed: embed.New(d.DB, d.AI, d.Logger)},
		pipeline.QueueNotify: {pipeline.TaskNotify: notify.New(d.DB, d.notifyConfig())},
	}
}

func (d Deps) notifyConfig() notify.Config {
	c := d.Notify
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.Registerer == nil {
		c.Registerer = d.Registerer
	}
	return c
}
