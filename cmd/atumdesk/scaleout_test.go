package main

// The scale-out shape on one machine: two `api` replicas behind nginx
// running deploy/nginx/atumdesk.conf (rendered by deploy/local/nginx.sh),
// one `pipeline`, two `worker` processes with different queues, all sharing
// PostgreSQL, Redis and one Kafka-protocol broker (in this test process,
// reached over TCP like a cluster). Clients talk to nginx only, from
// 127.0.0.2, while nginx reaches the replicas from 127.0.0.1, the one
// trusted proxy address.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/config"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/testenv"
)

// syncBuffer collects a process's output; read while the process writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fleet is the test's atumdesk processes, each with its own extra env.
type fleet struct {
	t     *testing.T
	env   []string
	mu    sync.Mutex
	procs map[string]*exec.Cmd
	logs  map[string]*syncBuffer
}

func newFleet(t *testing.T, env []string) *fleet {
	f := &fleet{t: t, env: env, procs: map[string]*exec.Cmd{}, logs: map[string]*syncBuffer{}}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, p := range f.procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
		if t.Failed() {
			for name, l := range f.logs {
				t.Logf("--- %s log (last 4 KB) ---\n%s", name, tail(l.String(), 4096))
			}
		}
	})
	return f
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (f *fleet) start(name string, env []string, args ...string) {
	f.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(slices.Clone(f.env), env...) // later entries win
	buf := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	require.NoError(f.t, cmd.Start())
	f.mu.Lock()
	f.procs[name], f.logs[name] = cmd, buf
	f.mu.Unlock()
}

// kill SIGKILLs a process; safe from any goroutine.
func (f *fleet) kill(name string) error {
	f.mu.Lock()
	p := f.procs[name]
	delete(f.procs, name)
	f.mu.Unlock()
	if p == nil {
		return fmt.Errorf("no process %s", name)
	}
	err := p.Process.Signal(syscall.SIGKILL)
	_ = p.Wait()
	return err
}

// startNginx runs deploy/local/nginx.sh up for the given replicas in a
// directory of the test's; it returns the base URL and the access log.
func startNginx(t *testing.T, upstreams []string) (string, string) {
	listen := freePort(t)
	dir := filepath.Join(t.TempDir(), "nginx")
	env := append(os.Environ(), "ATUMDESK_NGINX_DIR="+dir, "ATUMDESK_NGINX_LISTEN="+listen,
		"ATUMDESK_NGINX_UPSTREAMS="+strings.Join(upstreams, ","))
	script := filepath.Join(testenv.RepoRoot(), "deploy", "local", "nginx.sh")
	run := func(action string) ([]byte, error) {
		cmd := exec.Command("bash", script, action)
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	out, err := run("up")
	require.NoError(t, err, "nginx.sh up:\n%s", out)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "log", "error.log"))
			t.Logf("--- nginx error log (last 4 KB) ---\n%s", tail(string(b), 4096))
		}
		if out, err := run("down"); err != nil {
			t.Errorf("nginx.sh down: %v\n%s", err, out)
		}
	})
	return "http://" + listen, filepath.Join(dir, "log", "access.log")
}

// upstreamOf is the replica nginx's access log names for request rid (the
// last one tried).
func upstreamOf(t *testing.T, accessLog, rid string) string {
	re := regexp.MustCompile(`up=(.*?) us=.* rid=` + regexp.QuoteMeta(rid) + `$`)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(accessLog)
		for line := range strings.SplitSeq(string(b), "\n") {
			if m := re.FindStringSubmatch(line); m != nil {
				hops := strings.Split(m[1], ",")
				return strings.TrimSpace(hops[len(hops)-1])
			}
		}
	}
	t.Fatalf("request %s is not in nginx's access log", rid)
	return ""
}

// clientFrom is an HTTP client whose connections come from ip (127.0.0.0/8
// is all loopback on Linux). timeout 0 is for streams; their headers must
// still come promptly (a proxy that buffers the stream holds them too).
func clientFrom(ip string, timeout time.Duration) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 32,
		ResponseHeaderTimeout: 10 * time.Second}}
}

type reply struct {
	status int
	header http.Header
	body   []byte
	gz     bool // the transport decompressed a gzip body
}

func (r reply) json(t *testing.T) map[string]any {
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "%d %s", r.status, r.body)
	return m
}

// do sends one request; a transport error is returned, never fatal (it is
// called from worker goroutines).
func do(c *http.Client, method, url, token string, body any, header map[string]string) (reply, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return reply{status: res.StatusCode, header: res.Header, body: b, gz: res.Uncompressed}, err
}

func mustDo(t *testing.T, c *http.Client, method, url, token string, body any, header map[string]string) reply {
	t.Helper()
	r, err := do(c, method, url, token, body, header)
	require.NoError(t, err, "%s %s", method, url)
	return r
}

// metric is the value of one series in a /metrics page (-1: absent).
func metric(t *testing.T, url, series string) float64 {
	t.Helper()
	r := mustDo(t, http.DefaultClient, "GET", url, "", nil, nil)
	require.Equal(t, 200, r.status, url)
	for line := range strings.SplitSeq(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	return -1
}

// sseEvent is one event of a stream, with when it was read.
type sseEvent struct {
	ID, Type, Data string
	At             time.Time
}

// domain is the envelope of a domain event ("" for control events).
func (e sseEvent) domain() (typ, ticketID string) {
	var env struct {
		Type     string `json:"type"`
		TicketID string `json:"ticket_id"`
	}
	_ = json.Unmarshal([]byte(e.Data), &env)
	return env.Type, env.TicketID
}

// sseStream reads a server-sent-events response in the background.
type sseStream struct {
	header http.Header
	gz     bool          // the transport decompressed a gzip stream
	done   chan struct{} // closed when the body ends
	mu     sync.Mutex
	events []sseEvent
	notify chan struct{} // closed and replaced on every event
}

// openStream opens GET /api/v1/stream (the token in the query, as a
// browser's EventSource sends it), retrying while the hub starts (503).
func openStream(t *testing.T, c *http.Client, base, token, lastEventID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := dialStream(ctx, c, base, token, lastEventID)
	require.NoError(t, err)
	return s
}

// dialStream is openStream returning its error (for other goroutines).
func dialStream(ctx context.Context, c *http.Client, base, token, lastEventID string) (*sseStream, error) {
	var res *http.Response
	for deadline := time.Now().Add(30 * time.Second); ; {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/stream?access_token="+token, nil)
		if lastEventID != "" {
			req.Header.Set("Last-Event-ID", lastEventID)
		}
		var err error
		if res, err = c.Do(req); err != nil {
			return nil, err
		}
		if res.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
		res.Body.Close()
		time.Sleep(250 * time.Millisecond)
	}
	if ct := strings.Split(res.Header.Get("Content-Type"), ";")[0]; res.StatusCode != 200 || ct != "text/event-stream" {
		res.Body.Close()
		return nil, fmt.Errorf("stream: %d %s", res.StatusCode, ct)
	}
	s := &sseStream{header: res.Header, gz: res.Uncompressed, done: make(chan struct{}), notify: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer res.Body.Close()
		br := bufio.NewReader(res.Body)
		var ev sseEvent
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case line == "":
				if ev.Type != "" || ev.Data != "" {
					ev.At = time.Now()
					s.mu.Lock()
					s.events = append(s.events, ev)
					close(s.notify)
					s.notify = make(chan struct{})
					s.mu.Unlock()
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id:"):
				ev.ID = strings.TrimSpace(line[3:])
			case strings.HasPrefix(line, "event:"):
				ev.Type = strings.TrimSpace(line[6:])
			case strings.HasPrefix(line, "data:"):
				ev.Data += strings.TrimSpace(line[5:])
			}
		}
	}()
	return s, nil
}

// wait returns the first event (from the start of the stream) that matches.
func (s *sseStream) wait(t *testing.T, within time.Duration, what string, match func(sseEvent) bool) sseEvent {
	t.Helper()
	deadline := time.After(within)
	for i := 0; ; {
		s.mu.Lock()
		for ; i < len(s.events); i++ {
			if match(s.events[i]) {
				ev := s.events[i]
				s.mu.Unlock()
				return ev
			}
		}
		ch := s.notify
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %s on the stream within %s", what, within)
		}
	}
}

func (s *sseStream) lastID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.events) - 1; i >= 0; i-- {
		if s.events[i].ID != "" {
			return s.events[i].ID
		}
	}
	return ""
}

// created lists the tickets whose ticket.created event the stream carried.
func (s *sseStream) created() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	for _, e := range s.events {
		if typ, id := e.domain(); typ == "ticket.created" {
			out[id] = true
		}
	}
	return out
}

func isCreated(ticketID string) func(sseEvent) bool {
	return func(e sseEvent) bool { typ, id := e.domain(); return typ == "ticket.created" && id == ticketID }
}

// auditIP waits for the ticket.created audit row of request rid and
// returns its client address.
func auditIP(t *testing.T, db *gorm.DB, rid string) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var ips []string
		require.NoError(t, db.Raw(`SELECT coalesce(ip, '') FROM audit_log WHERE action = 'ticket.created' AND request_id = ?`, rid).Scan(&ips).Error)
		if len(ips) > 0 {
			require.Len(t, ips, 1)
			return ips[0]
		}
	}
	t.Fatalf("no ticket.created audit row for request %s", rid)
	return ""
}

func TestScaleOutBehindNginx(t *testing.T) {
	began := time.Now()
	dbURL := testenv.DatabaseURL(t)
	c := newCluster(t, dbURL) // the broker, migrations, demo users
	db, sqlDB, err := database.Open(context.Background(), dbURL, 2)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sqlDB.Close() })

	f := newFleet(t, append(c.env, "ATUMDESK_TRUSTED_PROXIES=127.0.0.1"))
	apis := map[string]string{"api-a": freePort(t), "api-b": freePort(t)}
	for name, addr := range apis {
		f.start(name, []string{"ATUMDESK_HTTP_ADDR=" + addr}, "api")
	}
	f.start("pipeline", []string{"ATUMDESK_METRICS_ADDR=" + freePort(t)}, "pipeline")
	workerMetrics := map[string]string{"dedup=2,sla=1": freePort(t), "triage=2,embed=1,notify=1": freePort(t)}
	for spec, addr := range workerMetrics {
		f.start("worker "+spec, []string{"ATUMDESK_METRICS_ADDR=" + addr}, "worker", "--queues", spec)
	}
	edge, accessLog := startNginx(t, []string{apis["api-a"], apis["api-b"]})
	for _, addr := range apis {
		deadline := time.Now().Add(60 * time.Second)
		for {
			r, err := do(http.DefaultClient, "GET", "http://"+addr+"/readyz", "", nil, nil)
			if err == nil && r.status == 200 {
				break
			}
			require.True(t, time.Now().Before(deadline), "replica %s never became ready", addr)
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("five processes and nginx ready after %s", time.Since(began).Round(time.Millisecond))

	client := clientFrom("127.0.0.2", 20*time.Second)
	streams := clientFrom("127.0.0.2", 0)

	// The edge: the app's security headers once each, /metrics and /readyz
	// not public (each replica serves them), nginx's own errors as problem
	// documents.
	r := mustDo(t, client, "GET", edge+"/healthz", "", nil, nil)
	require.Equal(t, 200, r.status)
	for _, h := range []string{"X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"} {
		require.Len(t, r.header.Values(h), 1, "%s sent once", h)
	}
	require.Equal(t, "nginx", r.header.Get("Server"), "server_tokens off")
	for _, path := range []string{"/metrics", "/readyz"} {
		require.Equal(t, 404, mustDo(t, client, "GET", edge+path, "", nil, nil).status, "%s through nginx", path)
		require.Equal(t, 200, mustDo(t, http.DefaultClient, "GET", "http://"+apis["api-a"]+path, "", nil, nil).status, "%s on the replica", path)
	}
	cfg, err := config.Load(map[string]string{})
	require.NoError(t, err)
	conn, err := net.Dial("tcp", strings.TrimPrefix(edge, "http://"))
	require.NoError(t, err)
	fmt.Fprintf(conn, "POST /api/v1/attachments HTTP/1.1\r\nHost: desk\r\nContent-Type: multipart/form-data; boundary=x\r\n"+
		"Content-Length: %d\r\nConnection: close\r\n\r\n", cfg.AttachmentMaxBytes+64<<10+1)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	conn.Close()
	require.Equal(t, 413, res.StatusCode, "a body over the upload limit stops at nginx")
	require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	require.Contains(t, string(body), `"type":"https://atumdesk.dev/problems/too-large"`)

	login := func(email string) string {
		r := mustDo(t, client, "POST", edge+"/api/v1/auth/login", "", map[string]string{"email": email, "password": e2ePassword}, nil)
		require.Equal(t, 200, r.status, "%s", r.body)
		return r.json(t)["access_token"].(string)
	}
	agent, customer := login("agent@acme.test"), login("customer_user@acme.test")

	// The agent's stream through nginx lands on one replica ("holder"); a
	// reference stream goes straight to the other.
	opened := time.Now()
	viaEdge := openStream(t, streams, edge, agent, "")
	ready := viaEdge.wait(t, 5*time.Second, "ready event", func(e sseEvent) bool { return e.Type == "ready" })
	require.False(t, viaEdge.gz, "the stream is not compressed")
	require.Equal(t, "no", viaEdge.header.Get("X-Accel-Buffering"), "passed on for proxies in front")
	var holder, other string
	for name, addr := range apis {
		if metric(t, "http://"+addr+"/metrics", "atumdesk_sse_connections") == 1 {
			holder = name
		} else {
			other = name
		}
	}
	require.NotEmpty(t, holder, "no replica holds the stream")
	require.NotEmpty(t, other)
	direct := openStream(t, http.DefaultClient, "http://"+apis[other], agent, "")
	t.Logf("stream via nginx on %s: ready event %s after the request", holder, ready.At.Sub(opened).Round(time.Millisecond))

	// A ticket filed through nginx, served by the other replica, reaches
	// the stream held by the first as it happens: nothing buffers it. The
	// client spoofs X-Forwarded-For; its address (127.0.0.2) is what the
	// audit log keeps, not the spoof nor nginx's 127.0.0.1.
	var ticketID, rid string
	var accepted time.Time
	for i := 0; i < 10 && ticketID == ""; i++ {
		rid = fmt.Sprintf("scaleout-cross-%d", i)
		r := mustDo(t, client, "POST", edge+"/api/v1/tickets", customer,
			map[string]string{"subject": fmt.Sprintf("Cross-replica check %d", i), "description": "Filed through nginx."},
			map[string]string{"X-Request-Id": rid, "X-Forwarded-For": "203.0.113.66"})
		require.Equal(t, 202, r.status, "%s", r.body)
		accepted = time.Now()
		if upstreamOf(t, accessLog, rid) == apis[other] {
			ticketID = r.json(t)["ticket_id"].(string)
		}
	}
	require.NotEmpty(t, ticketID, "nginx never sent a request to %s", other)
	onEdge := viaEdge.wait(t, 15*time.Second, "ticket.created via nginx", isCreated(ticketID))
	onDirect := direct.wait(t, 15*time.Second, "ticket.created direct", isCreated(ticketID))
	lag := onEdge.At.Sub(onDirect.At)
	t.Logf("ticket.created after the 202 from %s: %s on the stream via nginx (%s), %s on a direct stream to %s (difference %s)",
		other, onEdge.At.Sub(accepted).Round(time.Millisecond), holder, onDirect.At.Sub(accepted).Round(time.Millisecond),
		other, lag.Round(time.Millisecond))
	require.Less(t, lag.Abs(), time.Second, "the event reaches the stream through nginx as promptly as a direct one")
	require.Equal(t, "127.0.0.2", auditIP(t, db, rid), "the audit IP is the client's")

	// The same spoof sent straight to a replica: from an untrusted address
	// it is ignored; from the trusted one (where nginx connects from) it is
	// believed, which is why only nginx's address may be trusted.
	for _, tc := range []struct{ from, want string }{{"127.0.0.2", "127.0.0.2"}, {"127.0.0.1", "198.51.100.7"}} {
		id := "scaleout-xff-direct-" + tc.from
		r := mustDo(t, clientFrom(tc.from, 10*time.Second), "POST", "http://"+apis[holder]+"/api/v1/tickets", customer,
			map[string]string{"subject": "Direct " + tc.from, "description": "Straight to a replica."},
			map[string]string{"X-Request-Id": id, "X-Forwarded-For": "198.51.100.7"})
		require.Equal(t, 202, r.status, "%s", r.body)
		require.Equal(t, tc.want, auditIP(t, db, id), "direct from %s", tc.from)
	}

	// Duplicates are found by the dedup pool of one worker process while
	// the two submissions went through different replicas.
	post := func(subject string) string {
		r := mustDo(t, client, "POST", edge+"/api/v1/tickets", customer,
			map[string]string{"subject": subject, "description": "The printer is on fire."}, nil)
		require.Equal(t, 202, r.status, "%s", r.body)
		return r.json(t)["ticket_id"].(string)
	}
	first := post("Printer on fire")
	viaEdge.wait(t, 15*time.Second, "first printer ticket", isCreated(first))
	second := post("RE: Printer on fire")
	viaEdge.wait(t, 20*time.Second, "duplicate_marked", func(e sseEvent) bool {
		typ, id := e.domain()
		return typ == "ticket.duplicate_marked" && id == second
	})
	var dupOf string
	require.NoError(t, db.Raw(`SELECT coalesce(is_duplicate_of::text, '') FROM tickets WHERE id = ?`, second).Row().Scan(&dupOf))
	require.Equal(t, first, dupOf)

	// Load, and one replica SIGKILLed a third of the way through: nginx
	// sends everything after it to the survivor. Requests in flight at the
	// kill fail (nginx's 503); the client retries them with their
	// Idempotency-Key. A key the dead replica had reserved but not yet
	// produced stays "in progress" (409) until its reservation expires
	// (1 min, ingest/intake.go): such a submission was never accepted, and
	// the test stops retrying it after a few 409s ("held").
	//
	// The agent's stream, held by the killed replica, ends; the client
	// reconnects at once through nginx with its Last-Event-ID, as a
	// browser's EventSource does.
	const n, clients = 240, 8
	type attempt struct {
		status int // 0: transport error
		at     time.Time
	}
	type submission struct {
		started, accepted time.Time
		failed            []attempt
	}
	var (
		mu       sync.Mutex
		subs     = make([]submission, n)
		ids      = map[string]bool{}
		done     int
		killedAt time.Time
		errs     []string
	)
	type reconnect struct {
		s      *sseStream
		lastID string
		ended  time.Time
		err    error
	}
	reconnected := make(chan reconnect, 1)
	go func() {
		<-viaEdge.done
		rc := reconnect{ended: time.Now(), lastID: viaEdge.lastID()}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		rc.s, rc.err = dialStream(ctx, streams, edge, agent, rc.lastID)
		reconnected <- rc
	}()
	jobs := make(chan int)
	var wg sync.WaitGroup
	loadStart := time.Now()
	for range clients {
		wg.Go(func() {
			for i := range jobs {
				sub := submission{started: time.Now()}
				for conflicts := 0; sub.accepted.IsZero() && len(sub.failed) < 20 && conflicts < 3; {
					r, err := do(client, "POST", edge+"/api/v1/tickets", customer,
						map[string]string{"subject": fmt.Sprintf("scaleout ticket %d", i), "description": "Load through nginx."},
						map[string]string{"Idempotency-Key": fmt.Sprintf("scaleout-%d", i)})
					switch {
					case err == nil && r.status == 202:
						var v struct {
							TicketID string `json:"ticket_id"`
						}
						_ = json.Unmarshal(r.body, &v)
						sub.accepted = time.Now()
						mu.Lock()
						ids[v.TicketID] = true
						mu.Unlock()
					case err != nil:
						sub.failed = append(sub.failed, attempt{at: time.Now()})
						time.Sleep(200 * time.Millisecond)
					default:
						sub.failed = append(sub.failed, attempt{status: r.status, at: time.Now()})
						if r.status == 409 {
							conflicts++
						}
						time.Sleep(time.Second)
					}
				}
				mu.Lock()
				subs[i] = sub
				done++
				if done == n/3 {
					killedAt = time.Now()
					if err := f.kill(holder); err != nil {
						errs = append(errs, err.Error())
					}
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	loadTook := time.Since(loadStart)
	require.Empty(t, errs)
	var hit []string
	nAccepted, nHeld := 0, 0
	for i, sub := range subs {
		if !sub.accepted.IsZero() {
			nAccepted++
		}
		if len(sub.failed) == 0 {
			continue
		}
		// Only a request in flight at the kill fails: nginx answers 503 for
		// it (the replica died mid-request, or the request went out on a
		// kept-alive connection to it in the instant before nginx saw it
		// die: a POST is not retried by nginx once sent); later attempts
		// may meet the dead replica's reservation (409). Nothing started
		// well after the kill fails.
		first := sub.failed[0]
		require.True(t, sub.started.Before(killedAt.Add(250*time.Millisecond)), "submission %d started after the kill and failed: %+v", i, sub.failed)
		require.Contains(t, []int{0, 503}, first.status, "submission %d", i)
		require.Less(t, first.at.Sub(killedAt), time.Second, "submission %d", i)
		for _, a := range sub.failed[1:] {
			require.Equal(t, 409, a.status, "submission %d: %+v", i, sub.failed)
		}
		if sub.accepted.IsZero() {
			nHeld++
			hit = append(hit, fmt.Sprintf("#%d held by the dead replica's reservation", i))
		} else {
			hit = append(hit, fmt.Sprintf("#%d accepted at attempt %d, %s after the kill", i, len(sub.failed)+1,
				sub.accepted.Sub(killedAt).Round(100*time.Millisecond)))
		}
	}
	require.Len(t, ids, nAccepted, "one ticket per accepted submission")
	require.LessOrEqual(t, len(hit), clients, "at most the requests in flight at the kill")
	t.Logf("%d submissions through nginx from %d clients in %s, %s SIGKILLed after %d: %d in flight at the kill failed (%v); none started after it failed",
		n, clients, loadTook.Round(time.Millisecond), holder, n/3, len(hit), hit)

	// Every accepted submission persisted exactly once; a held one at most
	// once (its ticket, if it reached Kafka, answers the client's later retry).
	var total, keys int64
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		require.NoError(t, db.Raw(`SELECT count(*), count(DISTINCT idempotency_key) FROM tickets WHERE subject LIKE 'scaleout ticket %'`).
			Row().Scan(&total, &keys))
		if total >= int64(nAccepted) {
			break
		}
	}
	time.Sleep(500 * time.Millisecond) // anything extra would show now
	require.NoError(t, db.Raw(`SELECT count(*), count(DISTINCT idempotency_key) FROM tickets WHERE subject LIKE 'scaleout ticket %'`).
		Row().Scan(&total, &keys))
	require.Equal(t, total, keys, "one ticket per submission")
	require.GreaterOrEqual(t, total, int64(nAccepted))
	require.LessOrEqual(t, total, int64(nAccepted+nHeld))
	var stored int64
	require.NoError(t, db.Raw(`SELECT count(*) FROM tickets WHERE id::text IN ?`, slices.Collect(maps.Keys(ids))).Row().Scan(&stored))
	require.EqualValues(t, nAccepted, stored, "every accepted ticket is stored")

	// The stream on the killed replica ended; its reconnection through
	// nginx resumed on the survivor without a gap. The direct stream to the
	// survivor never noticed.
	var rc reconnect
	select {
	case rc = <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream of the killed replica did not end, or its reconnection hung")
	}
	require.NoError(t, rc.err)
	select {
	case <-direct.done:
		t.Fatal("the survivor's stream ended")
	default:
	}
	rd := rc.s.wait(t, 5*time.Second, "ready event", func(e sseEvent) bool { return e.Type == "ready" || e.Type == "reset" })
	require.Equal(t, "ready", rd.Type, "resumed, not reset: %s", rd.Data)
	require.Contains(t, rd.Data, `"resumed"`)
	require.Equal(t, 2.0, metric(t, "http://"+apis[other]+"/metrics", "atumdesk_sse_connections"), "the direct and the resumed stream on the survivor")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		seen := viaEdge.created()
		for id := range rc.s.created() {
			seen[id] = true
		}
		missing := 0
		for id := range ids {
			if !seen[id] {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "%d of %d ticket.created events never reached the agent across the reconnect", missing, len(ids))
	}
	t.Logf("the stream ended %s after the kill and resumed on %s %s later (%s, Last-Event-ID %s); every ticket.created reached the agent",
		rc.ended.Sub(killedAt).Round(time.Millisecond), other, rd.At.Sub(rc.ended).Round(time.Millisecond), rd.Data, rc.lastID)

	// JSON through nginx is compressed (the transport asked for gzip).
	r = mustDo(t, client, "GET", edge+"/api/v1/tickets?limit=100", agent, nil, nil)
	require.Equal(t, 200, r.status)
	require.True(t, r.gz, "ticket list gzip-compressed by nginx")
	require.Greater(t, len(r.body), 1024)

	// Each worker process ran only its queues, and reports the depth series
	// the KEDA ScaledObjects scale on.
	for spec, addr := range workerMetrics {
		mine := strings.Split(spec, ",")
		page := mustDo(t, http.DefaultClient, "GET", "http://"+addr+"/metrics", "", nil, nil)
		for _, q := range []string{"dedup", "triage", "embed", "sla", "notify"} {
			served := slices.ContainsFunc(mine, func(s string) bool { return strings.HasPrefix(s, q+"=") })
			series := fmt.Sprintf(`atumdesk_queue_tasks{queue=%q,state="pending"}`, q)
			require.Equal(t, served, strings.Contains(string(page.body), series), "worker %s: %s", spec, series)
		}
	}
	require.Positive(t, metric(t, "http://"+workerMetrics["dedup=2,sla=1"]+"/metrics", `atumdesk_tasks_processed_total{queue="dedup"}`))
	require.Positive(t, metric(t, "http://"+workerMetrics["triage=2,embed=1,notify=1"]+"/metrics", `atumdesk_tasks_processed_total{queue="triage"}`))

	// No query string (the stream's access_token) in nginx's log.
	b, err := os.ReadFile(accessLog)
	require.NoError(t, err)
	require.NotContains(t, string(b), "access_token")
	t.Logf("whole test %s", time.Since(began).Round(time.Millisecond))
}
