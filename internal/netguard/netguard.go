// Package netguard keeps connections that an administrator configures (an
// IMAP server today) away from internal addresses: loopback, private,
// link-local, cloud metadata and other special-purpose ranges are refused
// unless the deployment's allow-list names them (SECURITY.md §1.3, ASVS
// 5.2.6). The decision is made twice: when the setting is saved (a fast,
// friendly refusal) and in net.Dialer.Control on the address actually
// dialled, so DNS rebinding or a name that later resolves elsewhere cannot
// get around it.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrBlocked is wrapped by every refusal.
var ErrBlocked = errors.New("netguard: internal address not allowed")

// special are the ranges besides those netip.Addr classifies itself
// (loopback, private, link-local, multicast, unspecified) that no
// administrator-configured connection should reach by default.
var special = mustPrefixes(
	"0.0.0.0/8",       // "this network"
	"100.64.0.0/10",   // carrier-grade NAT (shared address space)
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // TEST-NET-1
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // TEST-NET-2
	"203.0.113.0/24",  // TEST-NET-3
	"240.0.0.0/4",     // reserved, and 255.255.255.255
	"::/96",           // IPv4-compatible (deprecated)
	"100::/64",        // discard-only
	"2001::/32",       // Teredo (hides an IPv4 address)
	"2001:db8::/32",   // documentation
)

// embeddedV4 are IPv6 ranges that carry an IPv4 address, judged by it.
var (
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	sixToV4 = netip.MustParsePrefix("2002::/16")
)

func mustPrefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

// Internal reports whether ip is an address a configured connection must
// not reach by default.
func Internal(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return true
	}
	for _, p := range special {
		if p.Contains(ip) {
			return true
		}
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			return Internal(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToV4.Contains(ip):
			return Internal(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	return false
}

// rule is one allow-list entry: a network (an IP is a /32 or /128) or a
// host name, with an optional port (0: any).
type rule struct {
	prefix netip.Prefix
	host   string
	port   int
}

// Guard decides. The zero value (and a nil *Guard) allows nothing
// internal.
type Guard struct {
	rules []rule
	// lookup resolves host names for CheckHost (net.DefaultResolver).
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// New parses an allow-list: each entry is a CIDR ("10.0.0.0/8"), an IP
// ("127.0.0.1", "::1"), a host name ("imap.internal"), or an IP or host
// name with a port ("127.0.0.1:11143", "[::1]:143", "imap.internal:993").
// Empty entries are ignored.
func New(allow []string) (*Guard, error) {
	g := &Guard{}
	for _, e := range allow {
		e = strings.ToLower(strings.TrimSpace(e))
		if e == "" {
			continue
		}
		r, err := parseRule(e)
		if err != nil {
			return nil, err
		}
		g.rules = append(g.rules, r)
	}
	return g, nil
}

// MustNew is New for fixed lists (tests); it panics on a bad entry.
func MustNew(allow ...string) *Guard {
	g, err := New(allow)
	if err != nil {
		panic(err)
	}
	return g
}

var hostRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

func parseRule(e string) (rule, error) {
	if strings.Contains(e, "/") {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return rule{}, fmt.Errorf("netguard: %q is not a CIDR: %w", e, err)
		}
		return rule{prefix: p.Masked()}, nil
	}
	host, port := e, 0
	if h, p, err := net.SplitHostPort(e); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return rule{}, fmt.Errorf("netguard: %q: port must be 1..65535", e)
		}
		host, port = h, n
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap().WithZone("")
		return rule{prefix: netip.PrefixFrom(ip, ip.BitLen()), port: port}, nil
	}
	host = strings.TrimSuffix(host, ".")
	if len(host) > 253 || !hostRE.MatchString(host) || numericHost(host) {
		return rule{}, fmt.Errorf("netguard: %q is not a CIDR, IP, host name or host:port", e)
	}
	return rule{host: host, port: port}, nil
}

// numericHost reports a name whose last label is a number (decimal, octal
// or hex): no DNS name looks like that, but some resolvers read
// "2130706433" or "0x7f.1" as an IPv4 address.
func numericHost(host string) bool {
	i := strings.LastIndexByte(host, '.')
	last := host[i+1:]
	if last == "" {
		return false
	}
	if rest, ok := strings.CutPrefix(last, "0x"); ok {
		_, err := strconv.ParseUint("0"+rest, 16, 64)
		return err == nil
	}
	_, err := strconv.ParseUint(last, 10, 64)
	return err == nil
}

func normHost(h string) string {
	return strings.TrimSuffix(strings.Trim(strings.ToLower(strings.TrimSpace(h)), "[]"), ".")
}

// Allowed reports whether a connection configured for host (the name or IP
// the administrator entered) may reach ip:port.
func (g *Guard) Allowed(host string, ip netip.Addr, port int) bool {
	ip = ip.Unmap().WithZone("")
	if !Internal(ip) {
		return true
	}
	if g == nil {
		return false
	}
	if g.hostAllowed(normHost(host), port) {
		return true
	}
	for _, r := range g.rules {
		if r.prefix.IsValid() && r.prefix.Contains(ip) && (r.port == 0 || r.port == port) {
			return true
		}
	}
	return false
}

// hostAllowed reports whether an entry names host itself.
func (g *Guard) hostAllowed(host string, port int) bool {
	if g == nil {
		return false
	}
	for _, r := range g.rules {
		if r.host != "" && r.host == host && (r.port == 0 || r.port == port) {
			return true
		}
	}
	return false
}

// Check is Allowed as an error wrapping ErrBlocked.
func (g *Guard) Check(host string, ip netip.Addr, port int) error {
	if g.Allowed(host, ip, port) {
		return nil
	}
	return fmt.Errorf("%w: %s resolves to %s, port %d (allow it with ATUMDESK_IMAP_ALLOW_HOSTS)", ErrBlocked, host, ip, port)
}

// CheckHost is the check made when the setting is saved: an IP is judged
// at once, a name by every address it resolves to now. A name that does
// not resolve passes (it may be created later); the dial-time check still
// applies. A numeric name that is not a plain IP (decimal, octal or hex
// forms) is refused: it is a known way to hide an internal address.
func (g *Guard) CheckHost(ctx context.Context, host string, port int) error {
	host = normHost(host)
	if ip, err := netip.ParseAddr(host); err == nil {
		return g.Check(host, ip, port)
	}
	if numericHost(host) {
		return fmt.Errorf("%w: %q is a numeric address in an unusual form; write it as a plain IP", ErrBlocked, host)
	}
	if g.hostAllowed(host, port) {
		return nil // the name itself is allowed, whatever it resolves to
	}
	lookup := net.DefaultResolver.LookupNetIP
	if g != nil && g.lookup != nil {
		lookup = func(ctx context.Context, _, h string) ([]netip.Addr, error) { return g.lookup(ctx, h) }
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ips, err := lookup(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, ip := range ips {
		if err := g.Check(host, ip, port); err != nil {
			return err
		}
	}
	return nil
}

// Control returns a net.Dialer Control function for a connection
// configured for host: it refuses, before connect(2), any address the
// guard does not allow. This is the check that counts: it sees the
// address after DNS resolution, on every attempt.
func (g *Guard) Control(host string) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: unparsable address %q", ErrBlocked, address)
		}
		return g.Check(host, ap.Addr(), int(ap.Port()))
	}
}

// WithLookup returns a copy of g that resolves names with lookup in
// CheckHost (tests: a resolver that answers what they need).
func (g *Guard) WithLookup(lookup func(ctx context.Context, host string) ([]netip.Addr, error)) *Guard {
	out := &Guard{lookup: lookup}
	if g != nil {
		out.rules = g.rules
	}
	return out
}
