// Package ratelimit counts events per key in fixed windows in Redis. The
// increment and the window's expiry are one atomic script, so parallel
// requests cannot slip past the limit.
package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

var incrScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}`)

// Hit counts one event for key within window and returns the count so far
// and the time left in the window.
func Hit(ctx context.Context, rdb *redis.Client, key string, window time.Duration) (int64, time.Duration, error) {
	res, err := incrScript.Run(ctx, rdb, []string{"atumdesk:rl:" + key}, window.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("ratelimit: %w", err)
	}
	return res[0], time.Duration(res[1]) * time.Millisecond, nil
}

// Allow counts one event and reports whether it is within limit; when not,
// retryAfter is when the window ends.
func Allow(ctx context.Context, rdb *redis.Client, key string, limit int, window time.Duration) (ok bool, retryAfter time.Duration, err error) {
	n, ttl, err := Hit(ctx, rdb, key, window)
	if err != nil {
		return false, 0, err
	}
	if n > int64(limit) {
		return false, max(ttl, time.Second), nil
	}
	return true, 0, nil
}

// Undo gives back one counted event (e.g. a login that succeeded).
func Undo(ctx context.Context, rdb *redis.Client, key string) {
	rdb.Decr(ctx, "atumdesk:rl:"+key)
}

// Reset forgets key's events.
func Reset(ctx context.Context, rdb *redis.Client, key string) {
	rdb.Del(ctx, "atumdesk:rl:"+key)
}
