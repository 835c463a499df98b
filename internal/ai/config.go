package ai

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/config"
)

// NewFromConfig builds the process's one Service from its configuration
// (ATUMDESK_AI_* and ATUMDESK_OLLAMA_*). Build it once per process and
// hand it to the workers (workers.Deps.AI) and the API (httpapi.Deps.AI),
// so the embed stage and the similar-ticket endpoint share one index.
func NewFromConfig(c *config.Config, db *gorm.DB, rdb *redis.Client, log *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	return New(Config{
		DB: db, Redis: rdb, Logger: log, Registerer: reg,
		DefaultProvider: c.AIProvider,
		RetrainInterval: c.AIRetrainInterval,
		Ollama: OllamaConfig{URL: c.OllamaURL, TriageModel: c.OllamaTriageModel, EmbedModel: c.OllamaEmbedModel,
			DraftModel: c.OllamaDraftModel, Timeout: c.OllamaTimeout, Retries: c.OllamaRetries},
	})
}
