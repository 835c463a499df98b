package ingest

import (
	"sync"
	"time"
)

// ttlCache keeps a value per key for ttl, so settings read on every
// submission (custom-field definitions) cost one query per interval per
// process. Errors are not cached.
type ttlCache[K comparable, V any] struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[K]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v       V
	fetched time.Time
}

func (c *ttlCache[K, V]) get(k K, load func() (V, error)) (V, error) {
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok && time.Since(e.fetched) < c.ttl {
		return e.v, nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) > 10_000 { // bounded: organisations, not requests
		c.m = map[K]ttlEntry[V]{}
	}
	c.m[k] = ttlEntry[V]{v: v, fetched: time.Now()}
	c.mu.Unlock()
	return v, nil
}
