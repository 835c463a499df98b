package main

// Process-level tests: the real binary as separate api, pipeline and worker
// processes, the Kafka-protocol broker in this test process (reached over
// TCP like a cluster), real PostgreSQL and Redis. They kill processes and
// stop PostgreSQL, and check that every accepted ticket is stored exactly
// once.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/pipeline"
)

const e2ePassword = "end to end password"

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "atumdesk-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "atumdesk")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is a set of atumdesk processes sharing one environment.
type cluster struct {
	t     *testing.T
	env   []string
	api   string // base URL
	procs map[string]*exec.Cmd
	logs  map[string]*bytes.Buffer
	mu    sync.Mutex
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func newCluster(t *testing.T, dbURL string) *cluster {
	t.Helper()
	broker, err := pipeline.StartBroker(context.Background(), pipeline.BrokerConfig{DataDir: t.TempDir(), Addr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(broker.Close)
	api := freePort(t)
	c := &cluster{t: t, api: "http://" + api, procs: map[string]*exec.Cmd{}, logs: map[string]*bytes.Buffer{}}
	c.env = append(os.Environ(),
		"ATUMDESK_DATABASE_URL="+dbURL,
		"ATUMDESK_REDIS_URL="+testenv.RedisURL(t),
		"ATUMDESK_KAFKA_BROKERS="+strings.Join(broker.Addrs(), ","),
		"ATUMDESK_HTTP_ADDR="+api,
		"ATUMDESK_JWT_SECRET="+strings.Repeat("e2e-secret-", 4),
		"ATUMDESK_LOG_LEVEL=info",
	)
	c.run(t, "migrate", "up")
	c.run(t, "seed", "--demo", "--password", e2ePassword)
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for name, p := range c.procs {
			_ = p.Process.Kill()
			_ = p.Wait()
			if t.Failed() {
				t.Logf("--- %s log ---\n%s", name, c.logs[name].String())
			}
		}
	})
	return c
}

func (c *cluster) run(t *testing.T, args ...string) {
	cmd := exec.Command(binary, args...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%v: %s", args, out)
}

// start runs a role in the background; name identifies it for kill.
func (c *cluster) start(name string, args ...string) {
	c.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(c.env, "ATUMDESK_METRICS_ADDR="+freePort(c.t))
	buf := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	require.NoError(c.t, cmd.Start())
	c.mu.Lock()
	c.procs[name], c.logs[name] = cmd, buf
	c.mu.Unlock()
}

func (c *cluster) kill(name string) {
	c.mu.Lock()
	p := c.procs[name]
	delete(c.procs, name)
	c.mu.Unlock()
	require.NoError(c.t, p.Process.Signal(syscall.SIGKILL))
	_ = p.Wait()
}

func (c *cluster) waitReady() {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(c.api + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatal("api never became ready")
}

func (c *cluster) login(email string) string {
	c.t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": e2ePassword})
	res, err := http.Post(c.api+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	require.NoError(c.t, err)
	defer res.Body.Close()
	var tok map[string]any
	require.NoError(c.t, json.NewDecoder(res.Body).Decode(&tok))
	require.Equal(c.t, 200, res.StatusCode, "%v", tok)
	return tok["access_token"].(string)
}

// submit files n tickets concurrently and returns how many were accepted.
func (c *cluster) submit(token string, from, n int, during func(done int)) int {
	c.t.Helper()
	var mu sync.Mutex
	accepted, done := 0, 0
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range jobs {
				body, _ := json.Marshal(map[string]string{"subject": fmt.Sprintf("e2e ticket %d", i), "description": "body",
					"requester_email": fmt.Sprintf("e2e-%d@example.test", i%50)})
				req, _ := http.NewRequest("POST", c.api+"/api/v1/tickets", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Idempotency-Key", fmt.Sprintf("e2e-%d", i))
				// a client retries on 503, with the same key, as the API asks
				for attempt := 0; attempt < 20; attempt++ {
					res, err := http.DefaultClient.Do(req)
					if err == nil {
						res.Body.Close()
						if res.StatusCode == 202 {
							mu.Lock()
							accepted++
							mu.Unlock()
							break
						}
						require.Contains(c.t, []int{409, 503}, res.StatusCode)
					}
					time.Sleep(250 * time.Millisecond)
					req.Body = io.NopCloser(bytes.NewReader(body))
				}
				mu.Lock()
				done++
				d := done
				mu.Unlock()
				if during != nil {
					during(d)
				}
			}
		})
	}
	for i := from; i < from+n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return accepted
}

func countTickets(t *testing.T, dbURL string) (total, distinctKeys int64) {
	db, sqlDB, err := database.Open(context.Background(), dbURL, 2)
	require.NoError(t, err)
	defer sqlDB.Close()
	err = db.Raw(`SELECT count(*), count(DISTINCT idempotency_key) FROM tickets WHERE subject LIKE 'e2e ticket %'`).Row().Scan(&total, &distinctKeys)
	if err != nil {
		return -1, -1
	}
	return total, distinctKeys
}

func waitTickets(t *testing.T, dbURL string, want int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if got, _ := countTickets(t, dbURL); got >= want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // anything extra would show now
	got, keys := countTickets(t, dbURL)
	require.EqualValues(t, want, got, "stored tickets")
	require.EqualValues(t, want, keys, "one ticket per submission")
}

// TestPipelineKilledMidBatch: the pipeline process is SIGKILLed twice while
// tickets flow; after restarts every accepted ticket exists exactly once.
func TestPipelineKilledMidBatch(t *testing.T) {
	dbURL := testenv.DatabaseURL(t)
	c := newCluster(t, dbURL)
	c.start("api", "api")
	c.start("pipeline", "pipeline")
	c.waitReady()
	token := c.login("agent@acme.test")
	const n = 600
	var once1, once2 sync.Once
	accepted := c.submit(token, 0, n, func(done int) {
		if done == n/3 {
			once1.Do(func() { c.kill("pipeline"); c.start("pipeline", "pipeline") })
		}
		if done == 2*n/3 {
			once2.Do(func() { c.kill("pipeline"); c.start("pipeline", "pipeline") })
		}
	})
	require.Equal(t, n, accepted)
	waitTickets(t, dbURL, n, 90*time.Second)
	// replaying the whole inbound topic (a new consumer group from the
	// start) would create nothing: the persister's own test covers it; here
	// a third restart re-reads whatever was uncommitted.
	c.kill("pipeline")
	c.start("pipeline", "pipeline")
	time.Sleep(2 * time.Second)
	waitTickets(t, dbURL, n, 10*time.Second)
}

// TestPostgresDownDuringSubmissions: PostgreSQL stops while customers keep
// submitting; intake keeps accepting (tickets wait on the topic) and every
// one is stored once it returns.
func TestPostgresDownDuringSubmissions(t *testing.T) {
	pg := testenv.PrivatePostgres(t)
	c := newCluster(t, pg.URL)
	c.start("api", "api")
	c.start("pipeline", "pipeline")
	c.waitReady()
	token := c.login("agent@acme.test")
	require.Equal(t, 50, c.submit(token, 0, 50, nil))
	waitTickets(t, pg.URL, 50, 30*time.Second)

	pg.Stop()
	accepted := c.submit(token, 50, 150, nil)
	require.Equal(t, 150, accepted, "intake accepts while PostgreSQL is down")
	time.Sleep(2 * time.Second)
	pg.Start()
	waitTickets(t, pg.URL, 200, 90*time.Second)
}

// sseEvents reads an SSE stream and sends each event's type and data.
func (c *cluster) sseEvents(token string) <-chan [2]string {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c.t.Cleanup(cancel)
	// The stream answers 503 (Retry-After) until its hub has found the
	// events topic, which the pipeline process creates.
	var res *http.Response
	for deadline := time.Now().Add(30 * time.Second); ; {
		req, _ := http.NewRequestWithContext(ctx, "GET", c.api+"/api/v1/stream?access_token="+token, nil)
		var err error
		res, err = http.DefaultClient.Do(req)
		require.NoError(c.t, err)
		if res.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
		res.Body.Close()
		time.Sleep(250 * time.Millisecond)
	}
	require.Equal(c.t, 200, res.StatusCode)
	out := make(chan [2]string, 100)
	go func() {
		defer res.Body.Close()
		var typ, data string
		buf := make([]byte, 0, 4096)
		tmp := make([]byte, 4096)
		for {
			n, err := res.Body.Read(tmp)
			buf = append(buf, tmp[:n]...)
			for {
				i := bytes.IndexByte(buf, '\n')
				if i < 0 {
					break
				}
				line := string(buf[:i])
				buf = buf[i+1:]
				switch {
				case strings.HasPrefix(line, "event:"):
					typ = strings.TrimSpace(line[6:])
				case strings.HasPrefix(line, "data:"):
					data += strings.TrimSpace(line[5:])
				case line == "":
					if typ != "" || data != "" {
						out <- [2]string{typ, data}
					}
					typ, data = "", ""
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return out
}

// TestSubmitPersistDedupSSE: a submission is stored, deduplicated, and its
// events reach exactly their audience over SSE.
func TestSubmitPersistDedupSSE(t *testing.T) {
	c := newCluster(t, testenv.DatabaseURL(t))
	c.start("api", "api")
	c.start("pipeline", "pipeline")
	c.start("worker", "worker", "--queues", "dedup=2")
	c.waitReady()
	agent := c.sseEvents(c.login("agent@acme.test"))
	customer := c.login("customer_user@acme.test")
	mine := c.sseEvents(customer)
	other := c.sseEvents(c.login("customer_user@globex.test"))

	post := func(subject string) string {
		body, _ := json.Marshal(map[string]string{"subject": subject, "description": "The printer is on fire."})
		req, _ := http.NewRequest("POST", c.api+"/api/v1/tickets", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+customer)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		var rec map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&rec))
		require.Equal(t, 202, res.StatusCode, "%v", rec)
		return rec["ticket_id"].(string)
	}
	first := post("Printer on fire")
	time.Sleep(300 * time.Millisecond)
	second := post("RE: Printer on fire")

	seen := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for !(seen["ticket.created "+first] && seen["ticket.created "+second] && seen["ticket.duplicate_marked "+second]) {
		select {
		case ev := <-agent:
			var e struct {
				Type     string `json:"type"`
				TicketID string `json:"ticket_id"`
			}
			if json.Unmarshal([]byte(ev[1]), &e) == nil && e.Type != "" {
				seen[e.Type+" "+e.TicketID] = true
			}
		case <-deadline:
			t.Fatalf("agent saw %v", seen)
		}
	}
	time.Sleep(500 * time.Millisecond)
	// the requester sees their tickets' public events, never the staff-only duplicate flag
	drain := func(ch <-chan [2]string) string {
		var all []string
		for {
			select {
			case ev := <-ch:
				all = append(all, ev[1])
			default:
				return strings.Join(all, "\n")
			}
		}
	}
	got := drain(mine)
	require.Contains(t, got, first)
	require.NotContains(t, got, "duplicate_marked")
	require.NotContains(t, drain(other), first, "another organisation sees nothing")
}
