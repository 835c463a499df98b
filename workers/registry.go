package workers

import (
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/pipeline"
	"github.com/atumdesk/atumdesk/workers/dedup"
)

// Deps are what the stage handlers need.
type Deps struct {
	DB          *gorm.DB
	Logger      *slog.Logger
	DedupWindow time.Duration // 0: dedup.DefaultWindow
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
	}
}
