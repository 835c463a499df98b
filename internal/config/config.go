// Package config declares every setting of atumdesk once: its environment
// variable, its default and its validation. Nothing else reads the
// environment.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config is the whole runtime configuration. The `env` tag is the variable
// name (with the ATUMDESK_ prefix added by Load); `envDefault` is the default
// documented in the README.
type Config struct {
	HTTPAddr         string        `env:"HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	PublicURL        string        `env:"PUBLIC_URL" envDefault:"http://127.0.0.1:8080"`
	DatabaseURL      string        `env:"DATABASE_URL" envDefault:"postgres://atumdesk:atumdesk@127.0.0.1:15432/atumdesk?sslmode=disable"`
	DatabaseMaxConn  int           `env:"DATABASE_MAX_CONNS" envDefault:"20"`
	RedisURL         string        `env:"REDIS_URL" envDefault:"redis://127.0.0.1:16379/0"`
	KafkaBrokers     []string      `env:"KAFKA_BROKERS" envSeparator:","`
	KafkaEmbedAddr   string        `env:"KAFKA_EMBEDDED_ADDR" envDefault:"127.0.0.1:19092"`
	KafkaDataDir     string        `env:"KAFKA_DATA_DIR" envDefault:"./data/kafka"`
	KafkaReplication int           `env:"KAFKA_REPLICATION_FACTOR" envDefault:"1"`
	LogLevel         string        `env:"LOG_LEVEL" envDefault:"info"`
	JWTSecret        string        `env:"JWT_SECRET"`
	AccessTokenTTL   time.Duration `env:"ACCESS_TOKEN_TTL" envDefault:"15m"`
	RefreshTokenTTL  time.Duration `env:"REFRESH_TOKEN_TTL" envDefault:"720h"`
	CookieSecure     bool          `env:"COOKIE_SECURE" envDefault:"true"`
	TrustedProxies   []string      `env:"TRUSTED_PROXIES" envSeparator:","`
	LoginMaxFails    int           `env:"LOGIN_MAX_FAILURES" envDefault:"5"`
	LoginWindow      time.Duration `env:"LOGIN_WINDOW" envDefault:"15m"`
	ShutdownTimeout  time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`

	// TrustedProxyPrefixes is TrustedProxies parsed; filled by Load.
	TrustedProxyPrefixes []netip.Prefix `env:"-"`
}

// Prefix is prepended to every variable name.
const Prefix = "ATUMDESK_"

// Load reads the configuration from the environment (lookup is os.LookupEnv
// in production, a map in tests) and validates it. Errors name the variable.
func Load(environ map[string]string) (*Config, error) {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Prefix: Prefix, Environment: environ}); err != nil {
		return nil, nameVariables(err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s%s: %s", Prefix, name, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("HTTP_ADDR", "want host:port, got %q", c.HTTPAddr)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("PUBLIC_URL", "want an absolute http(s) URL, got %q", c.PublicURL)
	}
	if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		bad("DATABASE_URL", "want a postgres:// URL")
	}
	if c.DatabaseMaxConn < 2 || c.DatabaseMaxConn > 1000 {
		bad("DATABASE_MAX_CONNS", "want 2..1000, got %d", c.DatabaseMaxConn)
	}
	if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		bad("REDIS_URL", "want a redis:// URL")
	}
	for _, b := range c.KafkaBrokers {
		if _, _, err := net.SplitHostPort(strings.TrimSpace(b)); err != nil {
			bad("KAFKA_BROKERS", "want host:port[,host:port], got %q", b)
		}
	}
	if _, _, err := net.SplitHostPort(c.KafkaEmbedAddr); err != nil {
		bad("KAFKA_EMBEDDED_ADDR", "want host:port, got %q", c.KafkaEmbedAddr)
	}
	if c.KafkaReplication < 1 || c.KafkaReplication > 5 {
		bad("KAFKA_REPLICATION_FACTOR", "want 1..5, got %d", c.KafkaReplication)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", "want debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		bad("JWT_SECRET", "want at least 32 characters")
	}
	if c.AccessTokenTTL < time.Minute || c.AccessTokenTTL > 24*time.Hour {
		bad("ACCESS_TOKEN_TTL", "want 1m..24h, got %s", c.AccessTokenTTL)
	}
	if c.RefreshTokenTTL < time.Hour {
		bad("REFRESH_TOKEN_TTL", "want at least 1h, got %s", c.RefreshTokenTTL)
	}
	if c.LoginMaxFails < 1 {
		bad("LOGIN_MAX_FAILURES", "want at least 1")
	}
	if c.LoginWindow < time.Second {
		bad("LOGIN_WINDOW", "want at least 1s")
	}
	for _, p := range c.TrustedProxies {
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "/") {
			p += "/32"
			if strings.Contains(p, ":") {
				p = strings.TrimSuffix(p, "/32") + "/128"
			}
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			bad("TRUSTED_PROXIES", "want CIDRs or IPs, got %q", p)
			continue
		}
		c.TrustedProxyPrefixes = append(c.TrustedProxyPrefixes, pfx.Masked())
	}
	if c.ShutdownTimeout <= 0 {
		bad("SHUTDOWN_TIMEOUT", "want a positive duration")
	}
	return errors.Join(errs...)
}

// EmbeddedKafka reports whether the in-process broker is used.
func (c *Config) EmbeddedKafka() bool { return len(c.KafkaBrokers) == 0 }

// nameVariables rewrites the library's parse errors, which name the Go
// field, to name the environment variable instead.
func nameVariables(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("config: %w", err)
	}
	t := reflect.TypeFor[Config]()
	var out []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := t.FieldByName(pe.Name); ok {
				out = append(out, fmt.Errorf("config: %s%s: want a %s: %v", Prefix, f.Tag.Get("env"), pe.Type, pe.Err))
				continue
			}
		}
		out = append(out, fmt.Errorf("config: %w", e))
	}
	return errors.Join(out...)
}
