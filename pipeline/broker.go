// Package pipeline holds the Kafka plumbing of ATUM DESK: the embedded
// Kafka-protocol broker, the topic declarations, the one producer wrapper and
// the consumer-group loop. Everything talks to Kafka through kafka-go over
// TCP, so the embedded broker and a real cluster (KAFKA_BROKERS) are used by
// the very same code.
package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

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
	// Fsync makes every produced batch and offset commit durable on disk
	// before it is acknowledged (kfake.SyncWrites). Without it writes go
	// to the OS page cache at once and are flushed on segment roll and
	// shutdown — Kafka's own default (log.flush.interval.messages=MAX):
	// a killed process loses nothing, a power cut may lose the last
	// seconds.
	Fsync bool
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
// A consumer-group member whose process dies is evicted after its session
// timeout, also when it died while its JoinGroup was parked (see
// holdEOFConn).
//
// Durability: acknowledged writes are in the data directory (page cache)
// before the producer hears back, so they survive a crash of the process;
// with Fsync they also survive a crash of the machine. There is one broker
// (RF 1): it does not survive the loss of the disk.
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
			ln, err := net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil {
				return nil, err
			}
			return holdEOFListener{ln}, nil
		}),
		kfake.DataDir(cfg.DataDir),
		kfake.ClusterID("atumdesk-embedded"),
		// No kfake.AllowAutoTopicCreation: topics are declared by
		// EnsureTopics, and a misspelt topic must fail loudly.
	}
	if cfg.Logger != nil {
		opts = append(opts, kfake.WithLogger(slogKfake{cfg.Logger}))
	}
	if cfg.Fsync {
		opts = append(opts, kfake.SyncWrites())
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

// maxHoldEOF bounds how long a client's disconnect is hidden from kfake
// while a request of it is unanswered: longer than any request is parked
// (a JoinGroup or SyncGroup waits at most the rebalance timeout, 5 s for
// our readers). Requests that get no answer at all (acks=0 produce; our
// producer uses acks=all) are the only ones to wait this long. The framing
// below assumes plaintext: the embedded broker has no TLS.
const maxHoldEOF = 10 * time.Minute

// holdEOFListener wraps every accepted connection in a holdEOFConn.
type holdEOFListener struct{ net.Listener }

func (l holdEOFListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &holdEOFConn{Conn: c, closed: make(chan struct{}), answered: make(chan struct{})}, nil
}

// holdEOFConn hides a client's disconnect from kfake until kfake has
// answered every request it read from the connection (or maxHoldEOF).
//
// Why: kfake answers a parked request with a select between its buffered
// response channel and the connection's "done" channel. Once the client is
// gone both are ready, so the answer "fails" half the time, and for a group
// member whose first JoinGroup was parked a failed answer means no session
// timer is ever armed: the rebalance keeps the dead member, the leader
// gives it partitions, and nothing ever evicts it (a SIGKILLed pipeline
// restarted while the group was rebalancing left the persister's group
// holding half the partitions forever). While kfake has not seen the
// disconnect, the answer always "succeeds", the session timer is armed,
// and the member is evicted after its session timeout as on Kafka; writing
// the answer then fails or completes, and the held EOF is released.
type holdEOFConn struct {
	net.Conn
	closed    chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	pending  int           // requests read in full and not yet answered
	answered chan struct{} // closed (and replaced) at every answer

	// Request framing on the read side (kfake reads from one goroutine
	// at a time): a 4-byte big-endian size, then that many bytes.
	size     [4]byte
	sizeRead int
	bodyLeft int
}

func (c *holdEOFConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.countRequests(p[:n])
	if err != nil {
		c.waitAnswered()
	}
	return n, err
}

// countRequests advances the request framing over b.
func (c *holdEOFConn) countRequests(b []byte) {
	done := 0
	for len(b) > 0 {
		if c.bodyLeft == 0 {
			k := copy(c.size[c.sizeRead:], b)
			c.sizeRead += k
			b = b[k:]
			if c.sizeRead < 4 {
				break
			}
			c.sizeRead = 0
			c.bodyLeft = int(binary.BigEndian.Uint32(c.size[:]))
			if c.bodyLeft == 0 {
				done++
			}
			continue
		}
		k := min(c.bodyLeft, len(b))
		c.bodyLeft -= k
		b = b[k:]
		if c.bodyLeft == 0 {
			done++
		}
	}
	if done > 0 {
		c.mu.Lock()
		c.pending += done
		c.mu.Unlock()
	}
}

// waitAnswered blocks until no request is unanswered, the connection is
// closed (kfake gave up on it, or shuts down) or maxHoldEOF has passed.
func (c *holdEOFConn) waitAnswered() {
	timeout := time.NewTimer(maxHoldEOF)
	defer timeout.Stop()
	for {
		c.mu.Lock()
		pending, answered := c.pending, c.answered
		c.mu.Unlock()
		if pending <= 0 {
			return
		}
		select {
		case <-answered:
		case <-c.closed:
			return
		case <-timeout.C:
			return
		}
	}
}

// Write sends one answer: kfake writes each response with a single Write.
func (c *holdEOFConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.pending--
	close(c.answered)
	c.answered = make(chan struct{})
	c.mu.Unlock()
	return n, err
}

func (c *holdEOFConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
