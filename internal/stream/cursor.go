package stream

import (
	"strconv"
	"strings"
)

// A cursor is the SSE event ID: for every partition of the events topic,
// the next Kafka offset the client has not seen yet ("k1-" then one decimal
// per partition, partition 0 first, joined by dots: "k1-120.0.57.3.9.14").
//
// Why offsets and not the pipeline's UUIDv7 event ID: UUIDv7 orders events by
// the time they were created, not by the time they reach the topic. An event
// of another partition (or one relayed late by the outbox) can arrive after a
// client saw a younger one, so "everything after ID x" would skip it. Kafka
// offsets are exact per partition and the same on every api replica (they
// all read the same topic), so a client can resume on any replica: the
// replica replays what it holds beyond each partition's offset. A single
// (partition, offset) pair would not do: a client's position spans all
// partitions.
type cursor []int64

const cursorPrefix = "k1-"

// parseCursor reads an ID written by encode. ok is false for anything else
// (a foreign or corrupted Last-Event-ID), which the hub answers with a reset.
func parseCursor(s string) (cursor, bool) {
	rest, found := strings.CutPrefix(s, cursorPrefix)
	if !found || rest == "" || len(rest) > 4096 {
		return nil, false
	}
	parts := strings.Split(rest, ".")
	c := make(cursor, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 {
			return nil, false
		}
		c[i] = n
	}
	return c, true
}

// encode renders c as an SSE id (digits, dots and the prefix: nothing that
// could break the wire format).
func (c cursor) encode() []byte {
	b := make([]byte, 0, len(cursorPrefix)+len(c)*8)
	b = append(b, cursorPrefix...)
	for i, n := range c {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendInt(b, n, 10)
	}
	return b
}

// at is the next offset of partition p; a partition the cursor does not
// name has seen nothing.
func (c cursor) at(p int) int64 {
	if p < len(c) {
		return c[p]
	}
	return 0
}

// advance raises c to at least o, partition by partition, in place (growing
// it when o names more partitions), and returns the result.
func (c cursor) advance(o cursor) cursor {
	for len(c) < len(o) {
		c = append(c, 0)
	}
	for i, n := range o {
		if n > c[i] {
			c[i] = n
		}
	}
	return c
}

// covers reports whether a client at c missed nothing the hub no longer
// holds: for every partition, c is at or beyond the hub's floor.
func (c cursor) covers(floor cursor) bool {
	for p, f := range floor {
		if c.at(p) < f {
			return false
		}
	}
	return true
}

func (c cursor) clone() cursor { return append(cursor(nil), c...) }
