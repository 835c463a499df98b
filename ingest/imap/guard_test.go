package imap

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/netguard"
)

// TestGuardRefusesInternalServer: a mailbox on loopback is not connected to
// unless the allow-list names it; the refusal is the mailbox's error and
// the mail stays on the server.
func TestGuardRefusesInternalServer(t *testing.T) {
	h := newHarness(t)
	const user = "box116@load.test"
	id := h.mailbox(user)
	m := h.send(user, "guarded")
	h.run(func(c *Config) { c.Guard = nil })
	waitFor(t, 5*time.Second, "connect refused", func() bool {
		e := h.position(id).lastError
		return e != nil && strings.HasPrefix(*e, "connect:") && strings.Contains(*e, "internal address not allowed")
	})
	waitFor(t, 5*time.Second, "the message is on the server", func() bool { _, ok := h.flags(user, "INBOX")[m]; return ok })
	time.Sleep(300 * time.Millisecond)
	require.Zero(t, h.sink.count(m), "nothing was read from the refused server")

	// another port of the same host is not covered by host:port
	h2 := newHarness(t)
	id2 := h2.mailbox("box117@load.test")
	h2.run(func(c *Config) { c.Guard = netguard.MustNew(h.env.imap) }) // STARTTLS port; the mailbox uses IMAPS
	waitFor(t, 5*time.Second, "other port refused", func() bool {
		e := h2.position(id2).lastError
		return e != nil && strings.Contains(*e, "internal address not allowed")
	})
}
