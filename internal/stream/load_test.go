//go:build linux

package stream

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

// The load test: N SSE clients connected to one hub over loopback HTTP,
// events produced to the broker at a fixed rate, each delivered to its
// audience; it reports p50/p99 publish→received (from just before the
// producer's Publish to the client's read, so Kafka is included) and the
// server process's RSS. The clients run in a child process (the test binary
// again): 10,000 connections need 20,000 descriptors on one side of
// loopback, the per-process limit here, and the server's RSS is then its own.
//
//	STREAM_LOAD=1 go test ./internal/stream -run '^TestLoad$' -v -timeout 15m
//
// STREAM_LOAD_DIRECT=1 skips Kafka (see below).
// Knobs (defaults): STREAM_LOAD_CLIENTS (10000), STREAM_LOAD_ORGS (50),
// STREAM_LOAD_RATE events/s (200), STREAM_LOAD_SECONDS (30). Per
// organisation 10 % of the clients are staff, 5 % customer admins, the rest
// customer users (one stream each); 80 % of the events are public, on a
// ticket of a random customer user of a random organisation.

type loadPlan struct {
	clients, orgs, rate, seconds int
}

func (p loadPlan) perOrg() int { return (p.clients + p.orgs - 1) / p.orgs }
func (p loadPlan) staff() int  { return max(1, p.perOrg()/10) }
func (p loadPlan) admins() int { return max(1, p.perOrg()/20) }

// viewer i of the plan: org i%orgs, member i/orgs of it.
func (p loadPlan) viewer(key string) (Viewer, bool) {
	o, j, ok := strings.Cut(key, ".")
	if !ok {
		return Viewer{}, false
	}
	org, err1 := strconv.Atoi(o)
	member, err2 := strconv.Atoi(j)
	if err1 != nil || err2 != nil {
		return Viewer{}, false
	}
	role := models.RoleCustomerUser
	switch {
	case member < p.staff():
		role = models.RoleAgent
	case member < p.staff()+p.admins():
		role = models.RoleCustomerAdmin
	}
	return Viewer{UserID: loadID("user-" + key), OrgID: loadID("org-" + o), Role: role, IP: "127.0.0.1"}, org < p.orgs
}

func (p loadPlan) key(i int) string { return fmt.Sprintf("%d.%d", i%p.orgs, i/p.orgs) }

func loadID(name string) uuid.UUID { return uuid.NewSHA1(uuid.NameSpaceOID, []byte(name)) }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestMain(m *testing.M) {
	if os.Getenv("STREAM_LOAD_CHILD") != "" {
		os.Exit(loadClients())
	}
	os.Exit(m.Run())
}

type loadResult struct {
	Connected int     `json:"connected"`
	Received  int64   `json:"received"`
	Closed    int64   `json:"closed"`
	P50, P90  float64 `json:"-"`
	P99, P999 float64 `json:"-"`
	Max       float64 `json:"-"`
	Hist      []int64 `json:"hist"` // per 100 µs bucket, last one overflow
	RSSMB     float64 `json:"rss_mb"`
}

const histBucket = 100 * time.Microsecond

func TestLoad(t *testing.T) {
	if os.Getenv("STREAM_LOAD") == "" {
		t.Skip("load test: run with STREAM_LOAD=1 (see load_test.go)")
	}
	plan := loadPlan{
		clients: envInt("STREAM_LOAD_CLIENTS", 10_000), orgs: envInt("STREAM_LOAD_ORGS", 50),
		rate: envInt("STREAM_LOAD_RATE", 200), seconds: envInt("STREAM_LOAD_SECONDS", 30),
	}
	k := newKafka(t)
	reg := prometheus.NewRegistry()
	h := NewHub(Config{Brokers: k.brokers, MaxPerIP: -1, Registerer: reg})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = h.Run(ctx) }()
	<-h.ready

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := plan.viewer(r.Header.Get("X-Viewer"))
		if !ok {
			http.Error(w, "unknown viewer", http.StatusUnauthorized)
			return
		}
		if err := h.Serve(w, r, v); err != nil {
			http.Error(w, err.Error(), http.StatusTooManyRequests)
		}
	}))
	srv.Config.ReadHeaderTimeout = 5 * time.Second
	srv.Config.ReadTimeout = 20 * time.Second // as in production (60 s): Serve must clear it
	srv.Start()
	defer srv.Close()
	defer h.Shutdown()

	rssIdle := rssMB(t)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "STREAM_LOAD_CHILD=1", "STREAM_LOAD_URL="+srv.URL,
		fmt.Sprintf("STREAM_LOAD_CLIENTS=%d", plan.clients), fmt.Sprintf("STREAM_LOAD_ORGS=%d", plan.orgs))
	stdin, err := child.StdinPipe()
	require.NoError(t, err)
	stdout, err := child.StdoutPipe()
	require.NoError(t, err)
	child.Stderr = os.Stderr
	require.NoError(t, child.Start())
	defer child.Process.Kill()
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 1<<20), 16<<20)

	start := time.Now()
	require.True(t, lines.Scan(), "client process: %v", lines.Err())
	require.Equal(t, fmt.Sprintf("connected %d", plan.clients), lines.Text())
	t.Logf("%d clients connected in %v", plan.clients, time.Since(start).Round(time.Millisecond))
	runtime.GC()
	rssConnected := rssMB(t)
	goroutines := runtime.NumGoroutine()
	cpu0 := cpuTime()
	if path := os.Getenv("STREAM_LOAD_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		require.NoError(t, err)
		require.NoError(t, pprof.StartCPUProfile(f))
		defer f.Close()
		defer pprof.StopCPUProfile()
	}

	// Publish at the rate, each Publish in its own goroutine so that a slow
	// acknowledgement does not lower the rate (the producer batches them).
	rng := rand.New(rand.NewPCG(1, 2))
	tick := time.NewTicker(5 * time.Millisecond)
	var wg sync.WaitGroup
	var published, failed atomic.Int64
	total := plan.rate * plan.seconds
	// STREAM_LOAD_DIRECT=1 hands the events to the hub in-process instead
	// of producing them, measuring the hub's own share (routing, r3labs,
	// HTTP, client) without Kafka.
	direct := os.Getenv("STREAM_LOAD_DIRECT") != ""
	h.mu.Lock()
	offset := h.head[0]
	h.mu.Unlock()
	begin := time.Now()
	for n := 0; n < total; n++ {
		// as many events as are due by now (a ticker alone drifts low)
		for n >= int(time.Since(begin).Seconds()*float64(plan.rate)) {
			<-tick.C
		}
		o := rng.IntN(plan.orgs)
		member := plan.staff() + plan.admins() + rng.IntN(max(1, plan.perOrg()-plan.staff()-plan.admins()))
		audience := pipeline.AudiencePublic
		if rng.IntN(5) == 0 {
			audience = pipeline.AudienceStaff
		}
		ev, err := pipeline.NewEvent(pipeline.EventCommentAdded, pipeline.TicketRef{
			OrgID: loadID(fmt.Sprint("org-", o)), TicketID: uuid.New(), RequesterID: loadID(fmt.Sprintf("user-%d.%d", o, member)),
		}, nil, audience, nil)
		require.NoError(t, err)
		if direct {
			ev.Data = json.RawMessage(`{"sent_at":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `}`)
			v, _ := json.Marshal(ev)
			h.handle(kafka.Message{Partition: 0, Offset: offset, Value: v, Time: time.Now()})
			offset++
			published.Add(1)
			continue
		}
		wg.Go(func() {
			ev.Data = json.RawMessage(`{"sent_at":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `}`)
			v, _ := json.Marshal(ev)
			err := k.producer.Publish(context.Background(), pipeline.Message{Topic: pipeline.TopicEvents,
				Key: []byte(ev.TicketID.String()), Value: v, Headers: map[string]string{pipeline.HeaderEventID: ev.ID.String()}})
			if err != nil {
				failed.Add(1)
				return
			}
			published.Add(1)
		})
	}
	tick.Stop()
	wg.Wait()
	elapsed := time.Since(begin)
	cpu := cpuTime() - cpu0
	time.Sleep(2 * time.Second) // stragglers
	rssPeak := rssMB(t)
	deliveries := counterValue(h.m.deliveries)
	kafka50, kafka99 := histogramQuantile(h.m.lag, .5), histogramQuantile(h.m.lag, .99)
	dropped := counterValue(h.m.dropped)

	require.NoError(t, stdin.Close()) // the child reports and exits
	require.True(t, lines.Scan(), "client process: %v", lines.Err())
	var res loadResult
	require.NoError(t, json.Unmarshal(lines.Bytes(), &res))
	require.NoError(t, child.Wait())
	res.percentiles()

	t.Logf("mode: %s", map[bool]string{false: "through Kafka (produce acks=all, fsync, fetch)", true: "direct into the hub, no Kafka"}[direct])
	t.Logf("clients %d (orgs %d: %d staff, %d customer admins, %d customer users each), events %d at %d/s for %v (publish errors %d)",
		plan.clients, plan.orgs, plan.staff(), plan.admins(), plan.perOrg()-plan.staff()-plan.admins(), published.Load(), plan.rate, elapsed, failed.Load())
	t.Logf("deliveries routed %.0f (%.0f/s), received %d, slow clients dropped %.0f, streams closed early %d",
		deliveries, deliveries/elapsed.Seconds(), res.Received, dropped, res.Closed)
	t.Logf("publish→received: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, p99.9 %.1f ms, max %.1f ms", res.P50, res.P90, res.P99, res.P999, res.Max)
	t.Logf("of which publish→routed by the hub (Kafka: produce, fsync, fetch; histogram bucket bounds): p50 ≤ %.1f ms, p99 ≤ %.1f ms", kafka50*1000, kafka99*1000)
	t.Logf("server process: RSS %.0f MB idle, %.0f MB with %d streams (%.1f KB/stream), %.0f MB at the end; %d goroutines; CPU %.0f %% of one core while publishing",
		rssIdle, rssConnected, plan.clients, (rssConnected-rssIdle)*1024/float64(plan.clients), rssPeak, goroutines, 100*cpu.Seconds()/elapsed.Seconds())
	t.Logf("client process: RSS %.0f MB", res.RSSMB)

	require.Equal(t, 0.0, dropped)
	require.Equal(t, int64(deliveries), res.Received, "every routed delivery arrived")
	require.Less(t, res.P99, 100.0, "p99 publish→received")
}

func (r *loadResult) percentiles() {
	var total int64
	for _, n := range r.Hist {
		total += n
	}
	at := func(q float64) float64 {
		want := int64(q * float64(total))
		var seen int64
		for i, n := range r.Hist {
			seen += n
			if seen > want {
				return float64(i+1) * float64(histBucket) / float64(time.Millisecond)
			}
		}
		return float64(len(r.Hist)) * float64(histBucket) / float64(time.Millisecond)
	}
	r.P50, r.P90, r.P99, r.P999 = at(.5), at(.9), at(.99), at(.999)
	for i := len(r.Hist) - 1; i >= 0; i-- {
		if r.Hist[i] > 0 {
			r.Max = float64(i+1) * float64(histBucket) / float64(time.Millisecond)
			break
		}
	}
}

// loadClients is the child process: it opens the plan's streams, reports
// "connected N", records the latency of every event until stdin closes,
// then prints a loadResult.
func loadClients() int {
	plan := loadPlan{clients: envInt("STREAM_LOAD_CLIENTS", 10_000), orgs: envInt("STREAM_LOAD_ORGS", 50)}
	addr := strings.TrimPrefix(os.Getenv("STREAM_LOAD_URL"), "http://")
	hist := make([]atomic.Int64, int(10*time.Second/histBucket)+1)
	var received, closed atomic.Int64
	var connected sync.WaitGroup
	connected.Add(plan.clients)
	sem := make(chan struct{}, 64) // concurrent connects
	var failed atomic.Int64
	for i := range plan.clients {
		sem <- struct{}{}
		go func() {
			ok := false
			defer func() {
				if !ok {
					failed.Add(1)
					connected.Done()
					<-sem
				}
			}()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				fmt.Fprintln(os.Stderr, "dial:", err)
				return
			}
			defer conn.Close()
			req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			req.Header.Set("X-Viewer", plan.key(i))
			if err := req.Write(conn); err != nil {
				return
			}
			br := bufio.NewReaderSize(conn, 2048)
			res, err := http.ReadResponse(br, req)
			if err != nil || res.StatusCode != http.StatusOK {
				fmt.Fprintln(os.Stderr, "connect:", err, res)
				return
			}
			body := bufio.NewReaderSize(res.Body, 2048)
			first := true
			readEvents(body, func(e sseEvent) bool {
				if first && e.event != "" {
					first, ok = false, true
					connected.Done()
					<-sem
					return true
				}
				if e.comment || e.event != "" {
					return true
				}
				sent, err := strconv.ParseInt(between(e.data, `"sent_at":`, `}`), 10, 64)
				if err != nil {
					fmt.Fprintln(os.Stderr, "bad event:", e.data)
					return true
				}
				d := e.at.Sub(time.Unix(0, sent))
				hist[min(max(0, int(d/histBucket)), len(hist)-1)].Add(1)
				received.Add(1)
				return true
			})
			if ok {
				closed.Add(1)
			}
		}()
	}
	connected.Wait()
	if n := failed.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "%d clients failed to connect\n", n)
		return 1
	}
	fmt.Printf("connected %d\n", plan.clients)
	_, _ = io.Copy(io.Discard, os.Stdin)
	res := loadResult{Connected: plan.clients, Received: received.Load(), Closed: closed.Load(), Hist: make([]int64, len(hist))}
	for i := range hist {
		res.Hist[i] = hist[i].Load()
	}
	if rss, err := readRSS(); err == nil {
		res.RSSMB = rss
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	return 0
}

func rssMB(t testing.TB) float64 {
	v, err := readRSS()
	require.NoError(t, err)
	return v
}

func readRSS() (float64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// histogramQuantile returns the upper bound of the bucket holding quantile q.
func histogramQuantile(h prometheus.Histogram, q float64) float64 {
	var m dto.Metric
	_ = h.Write(&m)
	want := q * float64(m.GetHistogram().GetSampleCount())
	for _, b := range m.GetHistogram().GetBucket() {
		if float64(b.GetCumulativeCount()) >= want {
			return b.GetUpperBound()
		}
	}
	return math.Inf(1)
}
