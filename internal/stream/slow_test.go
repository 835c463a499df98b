//go:build unix

package stream

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// TestSlowClientDropped: a client that stops reading is disconnected when
// its queue fills or a write times out; the other clients keep receiving
// without delay.
func TestSlowClientDropped(t *testing.T) {
	k := newKafka(t)
	org := uuid.New()
	viewers := map[string]Viewer{
		"slow": {UserID: uuid.New(), OrgID: org, Role: models.RoleAgent},
		"fast": {UserID: uuid.New(), OrgID: org, Role: models.RoleAgent},
	}
	h, srv := startHub(t, k, Config{ClientBuffer: 8, WriteTimeout: 500 * time.Millisecond}, viewers)

	// The slow client: a raw connection with a tiny receive buffer that
	// never reads after the request.
	addr := strings.TrimPrefix(srv.URL, "http://")
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	raw, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	defer raw.Close()
	_, err = fmt.Fprintf(raw, "GET / HTTP/1.1\r\nHost: %s\r\nX-Viewer: slow\r\n\r\n", addr)
	require.NoError(t, err)

	fast := connect(t, srv.URL, "fast", "")
	fast.opened(t)
	require.Eventually(t, func() bool { return len(activeSubs(h)) == 2 }, 5*time.Second, 5*time.Millisecond)

	big := strings.Repeat("x", 32<<10)
	const n = 300
	var wg sync.WaitGroup
	var worst time.Duration
	wg.Go(func() {
		for range n {
			e := fast.mustNext(t)
			var sentAt time.Time
			require.NoError(t, sentAt.UnmarshalText([]byte(between(e.data, `"sent_at":"`, `"`))))
			worst = max(worst, e.at.Sub(sentAt))
		}
	})
	for range n {
		k.publish(t, org, uuid.New(), uuid.New(), pipeline.AudiencePublic, map[string]string{"pad": big, "sent_at": time.Now().Format(time.RFC3339Nano)})
	}
	wg.Wait()
	t.Logf("fast client: worst publish→received %v over %d events of 32 KiB", worst, n)
	require.Less(t, worst, 2*time.Second, "the slow client delayed the fast one")
	require.Eventually(t, func() bool { return len(activeSubs(h)) == 1 }, 10*time.Second, 10*time.Millisecond, "slow client not dropped")
	require.Equal(t, []string{"fast"}, viewerNames(viewers, activeSubs(h)))
}
