// Package pipeline holds the Kafka plumbing of ATUM DESK: the embedded
// Kafka-protocol broker, the topic declarations, the one producer wrapper and
// the consumer-group loop. Everything talks to Kafka through kafka-go over
// TCP, so the embedded broker and a real cluster (KAFKA_BROKERS) are used by
// the very same code.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// BrokerConfig configures the embedded broker.
type BrokerConfig struct {
	// DataDir holds the broker's state (topics, group offsets) and log
	// segments; it is reloaded on start, so a restart on the same directory
	// keeps messages and committed offsets. Required. One broker per
	// directory: a second one fails to start.
	DataDir string
	// Addr is the loopback host:port to listen on, e.g. "127.0.0.1:19092".
	// Port 0 picks a free port (see Addrs). Empty means "127.0.0.1:0".
	// Non-loopback hosts are refused: the embedded broker has no
	// authentication and is meant for one machine.
	Addr string
	// Logger receives the broker's own log lines (nil: discarded). kfake's
	// per-request "info" lines are logged at slog.LevelDebug.
	Logger *slog.Logger
}

// Broker is the embedded single-node Kafka-protocol broker (kfake) with
// on-disk persistence and fsync per produced batch.
type Broker struct {
	cluster *kfake.Cluster
	addrs   []string
	lock    *os.File
	once    sync.Once
}

// StartBroker starts the embedded broker. ctx bounds start-up only; the
// broker runs until Close.
//
// Durability: every produced batch and every offset commit is fsynced before
// it is acknowledged (kfake.SyncWrites), so acknowledged data survives a crash
// of the process, not only a clean Close. There is one broker (RF 1): it does
// not survive the loss of the disk.
func StartBroker(ctx context.Context, cfg BrokerConfig) (*Broker, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.DataDir == "" {
		return nil, errors.New("pipeline: BrokerConfig.DataDir is required")
	}
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("pipeline: broker address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("pipeline: broker address %q: the embedded broker listens on loopback only", addr)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("pipeline: broker address %q: bad port", addr)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("pipeline: broker data dir: %w", err)
	}
	lock, err := lockDir(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("pipeline: broker data dir: %w", err)
	}

	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		// kfake always asks for 127.0.0.1:<port>; honour the configured
		// loopback host (e.g. ::1) instead.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
		kfake.DataDir(cfg.DataDir),
		kfake.SyncWrites(),
		kfake.ClusterID("atumdesk-embedded"),
		// No kfake.AllowAutoTopicCreation: topics are declared by
		// EnsureTopics, and a misspelt topic must fail loudly.
	}
	if cfg.Logger != nil {
		opts = append(opts, kfake.WithLogger(slogKfake{cfg.Logger}))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("pipeline: start embedded broker: %w", err)
	}
	b := &Broker{cluster: cluster, addrs: cluster.ListenAddrs(), lock: lock}
	if cfg.Logger != nil {
		cfg.Logger.Info("embedded kafka broker started", "addrs", b.addrs, "data_dir", cfg.DataDir)
	}
	return b, nil
}

// Addrs returns the host:port the broker listens on, for kafka-go's Brokers.
func (b *Broker) Addrs() []string { return append([]string(nil), b.addrs...) }

// Close stops the broker, writes its state to disk and releases the data
// directory. Clients see their connections drop. Safe to call twice.
func (b *Broker) Close() {
	b.once.Do(func() {
		b.cluster.Close()
		b.lock.Close()
	})
}

// slogKfake adapts kfake's logger to slog. kfake logs every request at its
// "info" level, which is debug noise for us.
type slogKfake struct{ l *slog.Logger }

func (s slogKfake) Logf(level kfake.LogLevel, format string, args ...any) {
	var lv slog.Level
	switch level {
	case kfake.LogLevelError:
		lv = slog.LevelError
	case kfake.LogLevelWarn:
		lv = slog.LevelWarn
	case kfake.LogLevelInfo:
		lv = slog.LevelDebug
	default:
		lv = slog.LevelDebug - 4
	}
	ctx := context.Background()
	if !s.l.Enabled(ctx, lv) {
		return
	}
	s.l.Log(ctx, lv, fmt.Sprintf(format, args...), "component", "kfake")
}
