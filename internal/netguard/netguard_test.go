package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

// The SECURITY.md §1.3 target table.
func TestInternal(t *testing.T) {
	for _, s := range []string{"127.0.0.1", "127.255.0.9", "::1", "0.0.0.0", "::", "169.254.169.254", "10.1.2.3", "172.16.0.1",
		"172.31.255.255", "192.168.1.1", "100.64.0.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "fe80::1", "fd00:ec2::254",
		"fc00::1", "224.0.0.1", "255.255.255.255", "64:ff9b::7f00:1", "2002:7f00:1::", "::127.0.0.1", "192.0.2.1", "ff02::1"} {
		require.True(t, Internal(netip.MustParseAddr(s)), s)
	}
	for _, s := range []string{"93.184.216.34", "8.8.8.8", "2606:4700::1111", "64:ff9b::808:808", "2002:808:808::", "172.32.0.1"} {
		require.False(t, Internal(netip.MustParseAddr(s)), s)
	}
	require.True(t, Internal(netip.Addr{}), "an invalid address is refused")
}

func TestAllowList(t *testing.T) {
	g, err := New([]string{" 127.0.0.1:11143 ", "10.0.0.0/8", "imap.internal", "db.internal:993", "::1", ""})
	require.NoError(t, err)
	lo := netip.MustParseAddr("127.0.0.1")
	cases := []struct {
		host string
		ip   string
		port int
		ok   bool
	}{
		{"127.0.0.1", "127.0.0.1", 11143, true},
		{"127.0.0.1", "127.0.0.1", 11993, false}, // another port
		{"localhost", "127.0.0.1", 11143, true},  // by address: the name does not matter
		{"x", "10.9.8.7", 143, true},
		{"x", "192.168.0.1", 143, false},
		{"IMAP.internal.", "192.168.0.1", 143, true}, // the name is allowed, whatever it resolves to
		{"db.internal", "192.168.0.1", 993, true},
		{"db.internal", "192.168.0.1", 143, false},
		{"x", "::1", 1, true},
		{"x", "::ffff:10.0.0.1", 1, true},
		{"x", "169.254.169.254", 80, false},
		{"x", "93.184.216.34", 993, true}, // public: always
	}
	for _, c := range cases {
		require.Equal(t, c.ok, g.Allowed(c.host, netip.MustParseAddr(c.ip), c.port), "%+v", c)
	}
	var nilGuard *Guard
	require.False(t, nilGuard.Allowed("localhost", lo, 143))
	require.True(t, nilGuard.Allowed("x", netip.MustParseAddr("8.8.8.8"), 143))
	require.ErrorIs(t, nilGuard.Check("localhost", lo, 143), ErrBlocked)

	for _, bad := range []string{"10.0.0.0/33", "127.0.0.1:0", "host:99999", "a b", "http://x/", "0x7f.1", "2130706433"} {
		_, err := New([]string{bad})
		require.Error(t, err, bad)
	}
}

func TestCheckHost(t *testing.T) {
	ctx := context.Background()
	var g *Guard
	for _, h := range []string{"127.0.0.1", "::1", "[::1]", "0.0.0.0", "169.254.169.254", "::ffff:127.0.0.1", "10.0.0.5",
		"2130706433", "0177.0.0.1", "0x7f.1", "127.1", "017700000001", "localhost"} {
		err := g.CheckHost(ctx, h, 143)
		require.ErrorIs(t, err, ErrBlocked, h)
	}
	require.NoError(t, g.CheckHost(ctx, "8.8.8.8", 993))
	require.NoError(t, g.CheckHost(ctx, "does-not-exist.invalid", 993), "an unresolvable name is left to the dial-time check")

	stub := g.WithLookup(func(_ context.Context, host string) ([]netip.Addr, error) {
		if host == "split.example" {
			return []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("10.0.0.1")}, nil
		}
		return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
	})
	require.ErrorIs(t, stub.CheckHost(ctx, "split.example", 993), ErrBlocked, "every address a name resolves to is checked")
	require.NoError(t, stub.CheckHost(ctx, "public.example", 993))
	allowed := MustNew("split.example").WithLookup(stub.lookup)
	require.NoError(t, allowed.CheckHost(ctx, "split.example", 993))
}

// canary is a loopback listener counting connections.
func canary(t *testing.T) (port int, hits *atomic.Int64) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	hits = &atomic.Int64{}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			hits.Add(1)
			_ = c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, hits
}

// stubDNS answers every A query with the next address of answers (the
// last one repeats) and every other query with no records.
func stubDNS(t *testing.T, answers ...string) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	var n atomic.Int64
	go func() {
		buf := make([]byte, 1500)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:k])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
			_ = b.StartQuestions()
			_ = b.Question(q)
			_ = b.StartAnswers()
			if q.Type == dnsmessage.TypeA {
				i := min(int(n.Add(1))-1, len(answers)-1)
				ip := netip.MustParseAddr(answers[i]).As4()
				_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}, dnsmessage.AResource{A: ip})
			}
			out, err := b.Finish()
			if err == nil {
				_, _ = pc.WriteTo(out, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// TestDialControl: the dial-time check sees the address actually dialled,
// so a name that answered "public" when the setting was saved and
// "loopback" when connecting (DNS rebinding) reaches nothing; the canary
// on loopback sees no connection.
func TestDialControl(t *testing.T) {
	port, hits := canary(t)
	dns := stubDNS(t, "93.184.216.34", "127.0.0.1")
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", dns)
	}}
	var g *Guard
	g = g.WithLookup(func(ctx context.Context, host string) ([]netip.Addr, error) {
		return resolver.LookupNetIP(ctx, "ip4", host)
	})
	ctx := context.Background()
	require.NoError(t, g.CheckHost(ctx, "rebind.test", port), "first answer: public")

	dial := func(host string, g *Guard) error {
		d := net.Dialer{Timeout: 2 * time.Second, Resolver: resolver, Control: g.Control(host)}
		c, err := d.DialContext(ctx, "tcp4", net.JoinHostPort(host, strconv.Itoa(port)))
		if err == nil {
			_ = c.Close()
		}
		return err
	}
	err := dial("rebind.test", g)
	require.ErrorIs(t, err, ErrBlocked, "second answer: loopback, refused at connect")
	for _, h := range []string{"127.0.0.1", "localhost", "::ffff:127.0.0.1"} {
		require.True(t, errors.Is(dial(h, g), ErrBlocked), h)
	}
	require.Zero(t, hits.Load(), "the canary saw a connection")

	// the allow-list lets the configured address through
	require.NoError(t, dial("127.0.0.1", MustNew("127.0.0.1:"+strconv.Itoa(port))))
	require.Eventually(t, func() bool { return hits.Load() == 1 }, time.Second, 10*time.Millisecond)
}
