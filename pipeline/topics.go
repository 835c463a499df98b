package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// The topics, declared once. The version suffix changes only with an
// incompatible change of the payload; a new version is a new topic.
const (
	// TopicInbound carries accepted submissions (web form, REST, e-mail)
	// from ingest to the persister, keyed by the submission's thread key.
	TopicInbound = "atumdesk.inbound.v1"
	// TopicEvents carries domain events (ticket created, comment added, …)
	// for SSE fan-out, audit and reporting, keyed by ticket ID.
	TopicEvents = "atumdesk.events.v1"

	// DefaultPartitions bounds the consumers of one group that can work in
	// parallel. Changing it on an existing topic remaps keys to partitions,
	// breaking per-key order for messages in flight.
	DefaultPartitions = 6
)

// TopicSpec declares a topic.
type TopicSpec struct {
	Name              string
	Partitions        int
	ReplicationFactor int               // 1 on the embedded broker, 3 on a real cluster
	Configs           map[string]string // topic-level configs, e.g. retention.ms
}

// DefaultTopics returns the pipeline's topics with DefaultPartitions each.
// With replicationFactor >= 3 it also sets min.insync.replicas=2 so that a
// write acknowledged with acks=all survives the loss of one broker.
func DefaultTopics(replicationFactor int) []TopicSpec {
	if replicationFactor < 1 {
		replicationFactor = 1
	}
	var cfg map[string]string
	if replicationFactor >= 3 {
		cfg = map[string]string{"min.insync.replicas": "2"}
	}
	return []TopicSpec{
		{Name: TopicInbound, Partitions: DefaultPartitions, ReplicationFactor: replicationFactor, Configs: cfg},
		{Name: TopicEvents, Partitions: DefaultPartitions, ReplicationFactor: replicationFactor, Configs: cfg},
	}
}

// EnsureTopics creates the topics that do not exist yet (through the
// controller) and waits until every topic is visible in the metadata with
// leaders for all its partitions. An existing topic counts as success and is
// left as it is, partition count included. Without a deadline on ctx it gives
// up after 30 s.
func EnsureTopics(ctx context.Context, brokers []string, topics []TopicSpec) error {
	if len(topics) == 0 {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	configs := make([]kafka.TopicConfig, 0, len(topics))
	for _, t := range topics {
		if t.Name == "" || t.Partitions < 1 || t.ReplicationFactor < 1 {
			return fmt.Errorf("pipeline: invalid topic spec %+v", t)
		}
		tc := kafka.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: t.ReplicationFactor}
		for k, v := range t.Configs {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
		configs = append(configs, tc)
	}

	conn, err := dialAny(ctx, brokers)
	if err != nil {
		return fmt.Errorf("pipeline: ensure topics: %w", err)
	}
	defer conn.Close()
	controller, err := conn.Controller()
	if err != nil {
		return fmt.Errorf("pipeline: ensure topics: find controller: %w", err)
	}
	cconn, err := dialAny(ctx, []string{net.JoinHostPort(controller.Host, strconv.Itoa(controller.Port))})
	if err != nil {
		return fmt.Errorf("pipeline: ensure topics: dial controller: %w", err)
	}
	defer cconn.Close()
	// kafka-go's Conn.CreateTopics already skips TopicAlreadyExists per
	// topic; the errors.Is is belt and braces.
	if err := cconn.CreateTopics(configs...); err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("pipeline: create topics: %w", err)
	}

	// Creation is asynchronous on a real cluster: wait for the metadata.
	for _, t := range topics {
		for {
			parts, err := conn.ReadPartitions(t.Name)
			if err == nil && topicReady(parts) {
				break
			}
			select {
			case <-ctx.Done():
				if err == nil {
					err = errors.New("partitions without leader")
				}
				return fmt.Errorf("pipeline: topic %s not ready: %w (%w)", t.Name, ctx.Err(), err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

func topicReady(parts []kafka.Partition) bool {
	if len(parts) == 0 {
		return false
	}
	for _, p := range parts {
		if p.Error != nil || p.Leader.Host == "" {
			return false
		}
	}
	return true
}

// dialAny connects to the first reachable broker and bounds the
// connection's I/O by ctx's deadline.
func dialAny(ctx context.Context, brokers []string) (*kafka.Conn, error) {
	if len(brokers) == 0 {
		return nil, errors.New("no brokers configured")
	}
	var errs []error
	for _, b := range brokers {
		conn, err := kafka.DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		return conn, nil
	}
	return nil, errors.Join(errs...)
}
