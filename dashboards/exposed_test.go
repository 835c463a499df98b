package dashboards

// The real check: every metric a dashboard or rule names is exposed by the
// code. The real binary runs `atumdesk all` (own database, Redis index,
// embedded broker on free ports), the real Prometheus of the local stack
// scrapes it through a file_sd target, and real requests make the
// event-driven series appear: sign-ins, a ticket filed through the API and
// run through every stage, an SLA breach, a mail fetched over IMAPS, an
// IMAP mailbox that cannot connect.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/testenv"
)

const demoPassword = "dashboards demo password"

// eventOnly are metrics whose series appear only with events a short test
// cannot cause without breaking something or waiting (a failed Kafka
// fetch, an unusable inbound message, a persister-level duplicate, a
// stream over a connection cap, a failing AI provider, a retraining that
// is due, an admin's replay). They are labelled vectors, so an
// untouched one is not in the exposition at all; for them the test accepts
// a declaration in the Go source (checked below) instead of a series.
var eventOnly = map[string]string{
	"atumdesk_kafka_consume_errors_total": "a failed fetch, handler attempt or commit",
	"atumdesk_persister_rejected_total":   "an inbound message that cannot become a ticket",
	"atumdesk_persister_duplicates_total": "a message whose ticket the persister finds existing",
	"atumdesk_sse_rejected_total":         "an SSE stream over a connection cap",
	"atumdesk_ai_fallbacks_total":         "a configured AI provider failing (the built-in one never falls back)",
	"atumdesk_ai_retrains_total":          "a classifier retraining (due every ATUMDESK_AI_RETRAIN_INTERVAL)",
	"atumdesk_imap_replays_total":         "an admin replaying a quarantined message",
}

// rareValues are label values the dashboards and rules select that a
// short healthy run does not produce.
var rareValues = map[string][]string{
	"code":   {"5xx"},                     // a server error
	"result": {"error"},                   // a failed Kafka produce
	"status": {"sent", "failed", "retry"}, // notifications: the test configures no SMTP server
}

func TestMetricsExposed(t *testing.T) {
	groups := loadedRules(t)
	refs := referencedNames(t, groups)
	require.NotEmpty(t, refs.scraped)

	start := time.Now()
	a := startApp(t)
	ready := time.Now()
	a.addScrapeTarget() // scraped while the events happen
	a.drive()
	driven := time.Now()
	a.waitScraped()
	defer func() {
		t.Logf("build+seed+ready %v, events %v, all names in Prometheus %v after them",
			ready.Sub(start).Round(100*time.Millisecond), driven.Sub(ready).Round(100*time.Millisecond),
			time.Since(driven).Round(100*time.Millisecond))
	}()

	// Every referenced name must have a series of this process in
	// Prometheus (the event-only ones may instead be declared in the
	// code), and every recording rule a series.
	ctx := context.Background()
	instance := a.addr
	var missing []string
	var present map[string]bool
	deadline := time.Now().Add(40 * time.Second)
	for {
		var err error
		present, err = namesOf(ctx, fmt.Sprintf(`group by (__name__) ({instance=%q})`, instance))
		require.NoError(t, err)
		recordedPresent, err := namesOf(ctx, fmt.Sprintf(`group by (__name__) ({__name__=~%q})`, strings.Join(sortedKeys(refs.recorded), "|")))
		require.NoError(t, err)
		missing = missing[:0]
		for name, where := range refs.scraped {
			if _, ok := eventOnly[name]; !ok && !present[name] {
				missing = append(missing, fmt.Sprintf("no series of %s for %s, used by %v", instance, name, where))
			}
		}
		for name, where := range refs.recorded {
			if !recordedPresent[name] {
				missing = append(missing, fmt.Sprintf("recording rule %s has no series, used by %v", name, where))
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Error(m)
	}
	if t.Failed() {
		return
	}
	var absent []string
	for name := range eventOnly {
		if _, used := refs.scraped[name]; used && !present[name] {
			absent = append(absent, name)
		}
	}
	sort.Strings(absent)
	t.Logf("%d metric names referenced; each has a series of %s in Prometheus, except the event-only %v",
		len(refs.scraped), instance, absent)

	// The labels the selectors match on exist on those series, and each
	// value an equality or regex matcher asks for is one the code
	// produced (a typo in a topic, queue, route or state shows no data
	// but no error).
	series := a.seriesLabels(ctx, start)
	checked := 0
	for _, l := range refs.selectors {
		byLabel, ok := series[l.sel.name]
		if !ok {
			continue // a recording rule or an absent event-only metric
		}
		for _, m := range l.sel.matchers {
			if m.label == "instance" {
				continue
			}
			values := byLabel[m.label]
			if len(values) == 0 {
				t.Errorf("%s: %s has no label %s (labels: %v)", l.where, l.sel.name, m.label, sortedKeys(byLabel))
				continue
			}
			checked++
			var match func(v string) bool
			switch m.op {
			case "=":
				match = func(v string) bool { return v == m.value }
			case "=~":
				re, err := regexp.Compile("^(?:" + m.value + ")$")
				require.NoError(t, err, l.where)
				match = re.MatchString
			default:
				continue // a negative matcher matches without the value
			}
			if !slices.ContainsFunc(sortedKeys(values), match) && !slices.ContainsFunc(rareValues[m.label], match) {
				t.Errorf("%s: no series of %s{%s%s%q}; %s has %v", l.where, l.sel.name, m.label, m.op, m.value, m.label, sortedKeys(values))
			}
		}
	}
	t.Logf("%d label matchers checked against the scraped series", checked)

	// The event-only names must at least be declared by the code.
	declared := declaredMetrics(t)
	for name, why := range eventOnly {
		if _, used := refs.scraped[name]; used {
			require.Contains(t, declared, name, "%s (appears on %s) is declared nowhere in the Go source", name, why)
		}
	}

	// What the code declares and no dashboard or rule uses: a hint, not a
	// failure (other engineers add metrics all the time).
	var unused []string
	for name, hist := range declared {
		used := false
		for _, s := range seriesOf(name, hist) {
			if _, ok := refs.scraped[s]; ok {
				used = true
			}
		}
		if !used {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	t.Logf("declared in the code but on no dashboard or rule: %v", unused)
}

// seriesLabels lists the process's series in Prometheus since start:
// metric name → label → values.
func (a *app) seriesLabels(ctx context.Context, start time.Time) map[string]map[string]map[string]bool {
	var series []map[string]string
	require.NoError(a.t, promAPI(ctx, http.MethodGet, "/api/v1/series", url.Values{
		"match[]": {fmt.Sprintf(`{instance=%q}`, a.addr)}, "start": {strconv.FormatInt(start.Unix(), 10)}}, &series))
	out := map[string]map[string]map[string]bool{}
	for _, s := range series {
		name := s["__name__"]
		if out[name] == nil {
			out[name] = map[string]map[string]bool{}
		}
		for k, v := range s {
			if out[name][k] == nil {
				out[name][k] = map[string]bool{}
			}
			out[name][k][v] = true
		}
	}
	return out
}

// namesOf runs a `group by (__name__)` query and returns the names.
func namesOf(ctx context.Context, q string) (map[string]bool, error) {
	res, err := instantQuery(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	out := map[string]bool{}
	for _, s := range res {
		out[s.Metric["__name__"]] = true
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func seriesOf(name string, histogram bool) []string {
	if histogram {
		return []string{name + "_bucket", name + "_sum", name + "_count"}
	}
	return []string{name}
}

// --- the process ---------------------------------------------------------------

type app struct {
	t       *testing.T
	addr    string // host:port of the HTTP API and /metrics
	dbURL   string
	db      *gorm.DB
	logFile string // the process's stdout and stderr
	mail    mailServers
	closed  string // a loopback address nothing listens on
}

// output is the process's log so far.
func (a *app) output() string {
	b, err := os.ReadFile(a.logFile)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// mailServers are the local Postfix and Dovecot (deploy/local/mail.sh).
type mailServers struct{ smtp, imaps, password, ca string }

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// mailUser is the Dovecot user whose INBOX this test polls: one of the
// spare numbered users of deploy/local/mail.sh no other test reads.
const mailUser = "box120@load.test"

// startApp builds the binary, seeds a fresh database and runs `atumdesk
// all` until the test ends.
func startApp(t *testing.T) *app {
	t.Helper()
	root := testenv.RepoRoot()
	dir := t.TempDir()
	bin := filepath.Join(dir, "atumdesk")
	build := exec.Command("go", "build", "-o", bin, "./cmd/atumdesk")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/atumdesk:\n%s", out)

	a := &app{t: t, addr: freeAddr(t), dbURL: testenv.DatabaseURL(t), logFile: filepath.Join(dir, "atumdesk.log"), closed: freeAddr(t),
		mail: mailServers{smtp: envOr("ATUMDESK_TEST_SMTP_ADDR", "127.0.0.1:11025"),
			imaps:    envOr("ATUMDESK_TEST_IMAPS_ADDR", "127.0.0.1:11993"),
			password: envOr("ATUMDESK_TEST_MAIL_PASSWORD", "atumdesk-mail-test"),
			ca:       envOr("ATUMDESK_TEST_MAIL_CA", filepath.Join(root, "data", "mail", "tls", "cert.pem"))}}
	_, err = os.Stat(a.mail.ca)
	require.NoError(t, err, "mail test servers: run `bash deploy/local/mail.sh up`")
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(3*i + 1)
	}
	// The process gets only its own settings: nothing inherited (a
	// developer's ATUMDESK_KAFKA_BROKERS or SMTP host would change it).
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ATUMDESK_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"ATUMDESK_DATABASE_URL="+a.dbURL,
		"ATUMDESK_REDIS_URL="+testenv.RedisURL(t),
		"ATUMDESK_HTTP_ADDR="+a.addr,
		"ATUMDESK_PUBLIC_URL=http://"+a.addr,
		"ATUMDESK_KAFKA_EMBEDDED_ADDR="+freeAddr(t),
		"ATUMDESK_KAFKA_DATA_DIR="+filepath.Join(dir, "kafka"),
		"ATUMDESK_STORAGE_DIR="+filepath.Join(dir, "attachments"),
		"ATUMDESK_MAIL_RAW_DIR="+filepath.Join(dir, "mail-raw"),
		"ATUMDESK_JWT_SECRET="+strings.Repeat("dashboards-", 4),
		"ATUMDESK_SECRET_KEY="+base64.StdEncoding.EncodeToString(key),
		"ATUMDESK_IMAP_ALLOW_HOSTS="+a.mail.imaps+","+a.closed,
		"ATUMDESK_IMAP_CA_FILE="+a.mail.ca,
		"ATUMDESK_IMAP_LEASE_TTL=2s",
		"ATUMDESK_COOKIE_SECURE=false",
		"ATUMDESK_LOG_LEVEL=warn",
	)

	seed := exec.Command(bin, "seed", "--demo", "--password", demoPassword)
	seed.Env = env
	out, err = seed.CombinedOutput()
	require.NoError(t, err, "seed: %s", out)

	logf, err := os.Create(a.logFile)
	require.NoError(t, err)
	t.Cleanup(func() { _ = logf.Close() })
	cmd := exec.Command(bin, "all")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("--- atumdesk all log ---\n%s", a.output())
		}
	})

	db, sqlDB, err := database.Open(context.Background(), a.dbURL, 2)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sqlDB.Close() })
	a.db = db

	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get("http://" + a.addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return a
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("atumdesk all exited: %v\n%s", err, a.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("atumdesk all not ready within 60 s\n%s", a.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// addScrapeTarget drops a file_sd target file where the local Prometheus
// looks (deploy/prometheus/prometheus.yml: data/prometheus-targets/*.yml).
func (a *app) addScrapeTarget() {
	t := a.t
	dir := filepath.Join(testenv.RepoRoot(), "data", "prometheus-targets")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	file := filepath.Join(dir, "dashboards-test-"+strings.ReplaceAll(a.addr, ":", "-")+".yml")
	body := fmt.Sprintf("# written by dashboards/exposed_test.go; removed when the test ends\n- targets: ['%s']\n  labels:\n    source: dashboards-test\n", a.addr)
	// written aside and renamed: Prometheus must never read half a file
	require.NoError(t, os.WriteFile(file+".tmp", []byte(body), 0o644))
	require.NoError(t, os.Rename(file+".tmp", file))
	t.Cleanup(func() { _ = os.Remove(file) })
}

// waitScraped waits until Prometheus scrapes the process successfully.
func (a *app) waitScraped() {
	t := a.t
	ctx := context.Background()
	q := fmt.Sprintf(`up{instance=%q} == 1`, a.addr)
	deadline := time.Now().Add(40 * time.Second)
	for {
		res, err := instantQuery(ctx, q)
		require.NoError(t, err)
		if len(res) == 1 {
			return
		}
		if time.Now().After(deadline) {
			var targets any
			_ = promAPI(ctx, http.MethodGet, "/api/v1/targets", nil, &targets)
			t.Fatalf("Prometheus never scraped %s (%s); targets: %v", a.addr, q, targets)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// --- driving real events ---------------------------------------------------------

// call sends a JSON request; it returns the status and the decoded body.
func (a *app) call(method, path, token string, body any, headers ...string) (int, map[string]any) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(a.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+a.addr+path, rd)
	require.NoError(a.t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := httpClient.Do(req)
	require.NoError(a.t, err)
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func (a *app) must(want int, method, path, token string, body any, headers ...string) map[string]any {
	a.t.Helper()
	status, out := a.call(method, path, token, body, headers...)
	require.Equal(a.t, want, status, "%s %s: %v", method, path, out)
	return out
}

func (a *app) login(email string) string {
	a.t.Helper()
	out := a.must(http.StatusOK, "POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": demoPassword})
	return out["access_token"].(string)
}

// drive causes the events behind the event-driven series.
func (a *app) drive() {
	t := a.t
	admin, manager, agent := a.login("admin@acme.test"), a.login("manager@acme.test"), a.login("agent@acme.test")
	status, _ := a.call("POST", "/api/v1/auth/login", "", map[string]string{"email": "agent@acme.test", "password": "wrong"})
	require.Equal(t, http.StatusUnauthorized, status, "a failed sign-in")
	status, _ = a.call("POST", "/api/v1/auth/refresh", "", nil)
	require.Equal(t, http.StatusUnauthorized, status, "a refresh without its cookie")

	// E-mail: a mail waiting in a real mailbox, fetched over IMAPS once the
	// mailbox is connected; and a mailbox whose server refuses connections.
	nonce := uuid.NewString()[:8]
	a.sendMail(mailUser, fmt.Sprintf("From: Dana Dashboard <dana-%s@example.test>\r\nTo: %s\r\nSubject: Dashboards check %s\r\n"+
		"Message-ID: <dash-%s@example.test>\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
		"The dashboards test sent this.\r\n", nonce, mailUser, nonce, nonce, time.Now().Format(time.RFC1123Z)))
	host, port, err := net.SplitHostPort(a.mail.imaps)
	require.NoError(t, err)
	var portN int
	_, err = fmt.Sscan(port, &portN)
	require.NoError(t, err)
	a.must(http.StatusCreated, "POST", "/api/v1/admin/mailboxes", admin, map[string]any{"address": mailUser, "imap_host": host,
		"imap_port": portN, "imap_tls": "tls", "imap_username": mailUser, "password": a.mail.password})
	_, closedPort, _ := net.SplitHostPort(a.closed)
	_, err = fmt.Sscan(closedPort, &portN)
	require.NoError(t, err)
	a.must(http.StatusCreated, "POST", "/api/v1/admin/mailboxes", admin, map[string]any{"address": "nowhere@acme.test",
		"imap_host": "127.0.0.1", "imap_port": portN, "imap_tls": "tls", "imap_username": "nowhere", "password": "nowhere"})

	// A ticket through the API, every stage, and its SLA clocks.
	me := a.must(http.StatusOK, "GET", "/api/v1/me", agent, nil)
	ticket := a.must(http.StatusCreated, "POST", "/api/v1/tickets", agent, map[string]any{"subject": "Dashboards check " + nonce,
		"description": "The VPN drops every few minutes.", "priority": "medium", "requester_email": "dana-" + nonce + "@example.test"},
		"Prefer", "wait=10", "Idempotency-Key", "dashboards-"+nonce)
	id := ticket["id"].(string)
	tpath := "/api/v1/tickets/" + id
	a.must(http.StatusOK, "POST", tpath+"/accept", manager, nil)

	// Breaches are minutes away at the least; move the clock's start a
	// month back (this test's own database) and change the priority, which
	// recomputes the due times from the start: both clocks are past due,
	// and the SLA timers fire their escalation steps and breaches now.
	res := a.db.Exec(`UPDATE tickets SET sla_started_at = sla_started_at - interval '30 days' WHERE id = ? AND sla_started_at IS NOT NULL`, id)
	require.NoError(t, res.Error)
	require.EqualValues(t, 1, res.RowsAffected, "accepting started the SLA clock")
	a.must(http.StatusOK, "PATCH", tpath, manager, map[string]any{"priority": "high"})
	a.waitRows(`SELECT count(*) FROM sla_breaches WHERE ticket_id = ?`, id, 2, "breaches of both clocks")

	// First response and resolution meet the clocks (late): the business
	// time histograms.
	a.must(http.StatusOK, "POST", tpath+"/assign", manager, map[string]any{"assigned_to": me["id"]})
	a.must(http.StatusOK, "POST", tpath+"/status", agent, map[string]any{"status": "in_progress"})
	a.must(http.StatusCreated, "POST", tpath+"/comments", agent, map[string]any{"content": "Please try the new VPN profile."})
	a.must(http.StatusOK, "POST", tpath+"/status", agent, map[string]any{"status": "resolved"})

	a.waitRows(`SELECT count(*) FROM tickets WHERE source_message_id = ?`, "dash-"+nonce+"@example.test", 1, "the mail's ticket")
	a.waitRows(`SELECT count(*) FROM mailboxes WHERE address = ? AND last_error LIKE 'connect:%'`, "nowhere@acme.test", 1,
		"the unreachable mailbox's error")
}

// waitRows waits until query (one argument) counts at least want rows.
func (a *app) waitRows(query string, arg any, want int64, what string) {
	a.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int64
		require.NoError(a.t, a.db.Raw(query, arg).Row().Scan(&n))
		if n >= want {
			return
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("%s: %d rows, want %d (%s)", what, n, want, query)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sendMail delivers raw to user through the local Postfix (plain SMTP on
// loopback).
func (a *app) sendMail(user, raw string) {
	t := a.t
	c, err := smtp.Dial(a.mail.smtp)
	require.NoError(t, err, "mail test servers: run `bash deploy/local/mail.sh up`")
	defer c.Close()
	require.NoError(t, c.Hello("dashboards.atumdesk.test"))
	require.NoError(t, c.Mail("dashboards@example.test"))
	require.NoError(t, c.Rcpt(user))
	w, err := c.Data()
	require.NoError(t, err)
	_, err = io.WriteString(w, raw)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, c.Quit())
}

// --- metrics declared in the code ---------------------------------------------------

// namespace is internal/metrics.Namespace.
const namespace = "atumdesk"

// declaredMetrics finds the collectors declared in the repository's Go
// source: prometheus.{Counter,Gauge,Histogram,Summary}Opts literals whose
// Namespace, Subsystem and Name resolve to constants, and
// prometheus.NewDesc with a literal name. The value says whether it is a
// histogram (exposed as _bucket, _sum and _count).
func declaredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	root := testenv.RepoRoot()
	out := map[string]bool{}
	skip := []string{".git", "node_modules", "frontend", "data", "bin", "docs", "testdata"}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && slices.Contains(skip, d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil // someone's half-written file: not ours to judge
		}
		consts := map[string]string{}
		ast.Inspect(f, func(n ast.Node) bool {
			if gd, ok := n.(*ast.GenDecl); ok && gd.Tok == token.CONST {
				for _, s := range gd.Specs {
					vs := s.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if i < len(vs.Values) {
							if v, ok := stringLit(vs.Values[i]); ok {
								consts[name.Name] = v
							}
						}
					}
				}
			}
			return true
		})
		resolve := func(e ast.Expr) (string, bool) {
			if v, ok := stringLit(e); ok {
				return v, true
			}
			switch x := e.(type) {
			case *ast.Ident:
				if x.Name == "Namespace" {
					return namespace, true
				}
				v, ok := consts[x.Name]
				return v, ok
			case *ast.SelectorExpr:
				if x.Sel.Name == "Namespace" {
					return namespace, true
				}
			}
			return "", false
		}
		// helpers are functions building Opts from a name parameter (the
		// SSE hub's opts(name, help)): their calls name the metrics.
		type helper struct {
			param int
			opts  *ast.CompositeLit
		}
		helpers := map[string]helper{}
		addHelper := func(name string, ft *ast.FuncType, body ast.Node) {
			var params []string
			for _, f := range ft.Params.List {
				for _, n := range f.Names {
					params = append(params, n.Name)
				}
			}
			ast.Inspect(body, func(n ast.Node) bool {
				if cl, ok := n.(*ast.CompositeLit); ok {
					if kind, _ := optsKind(cl); kind != "" {
						if id, ok := optsField(cl, "Name").(*ast.Ident); ok {
							if i := slices.Index(params, id.Name); i >= 0 {
								helpers[name] = helper{param: i, opts: cl}
							}
						}
					}
				}
				return true
			})
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.FuncDecl:
				addHelper(x.Name.Name, x.Type, x.Body)
			case *ast.AssignStmt:
				if len(x.Lhs) == 1 && len(x.Rhs) == 1 {
					if id, ok := x.Lhs[0].(*ast.Ident); ok {
						if fl, ok := x.Rhs[0].(*ast.FuncLit); ok {
							addHelper(id.Name, fl.Type, fl.Body)
						}
					}
				}
			}
			return true
		})
		// record adds the metric an Opts literal declares, name given.
		record := func(cl *ast.CompositeLit, name string) {
			kind, _ := optsKind(cl)
			parts := []string{}
			for _, k := range []string{"Namespace", "Subsystem"} {
				if e := optsField(cl, k); e != nil {
					v, ok := resolve(e)
					if !ok {
						return // built at run time
					}
					if v != "" {
						parts = append(parts, v)
					}
				}
			}
			out[strings.Join(append(parts, name), "_")] = kind == "Histogram"
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.CompositeLit:
				if kind, _ := optsKind(x); kind != "" {
					if e := optsField(x, "Name"); e != nil {
						if v, ok := resolve(e); ok && v != "" {
							record(x, v)
						}
					}
				}
			case *ast.CallExpr:
				switch fn := x.Fun.(type) {
				case *ast.SelectorExpr:
					if fn.Sel.Name == "NewDesc" && len(x.Args) > 0 {
						if v, ok := stringLit(x.Args[0]); ok {
							out[v] = false
						}
					}
				case *ast.Ident:
					if h, ok := helpers[fn.Name]; ok && h.param < len(x.Args) {
						if v, ok := stringLit(x.Args[h.param]); ok {
							record(h.opts, v)
						}
					}
				}
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	require.Contains(t, out, "atumdesk_http_requests_total", "the scan must find internal/metrics")
	return out
}

// optsKind is Counter, Gauge, Histogram or Summary for a
// prometheus.<Kind>Opts literal, "" for anything else.
func optsKind(cl *ast.CompositeLit) (string, bool) {
	sel, ok := cl.Type.(*ast.SelectorExpr)
	if !ok {
		return "", false
	}
	kind, ok := strings.CutSuffix(sel.Sel.Name, "Opts")
	if !ok || !slices.Contains([]string{"Counter", "Gauge", "Histogram", "Summary"}, kind) {
		return "", false
	}
	return kind, true
}

// optsField is the value of field key of an Opts literal, nil if unset.
func optsField(cl *ast.CompositeLit, key string) ast.Expr {
	for _, el := range cl.Elts {
		if kv, ok := el.(*ast.KeyValueExpr); ok {
			if id, ok := kv.Key.(*ast.Ident); ok && id.Name == key {
				return kv.Value
			}
		}
	}
	return nil
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s := bl.Value
	if len(s) >= 2 {
		return s[1 : len(s)-1], true
	}
	return "", false
}

// TestDeclaredMetrics: the source scan finds each way the code declares
// a collector.
func TestDeclaredMetrics(t *testing.T) {
	d := declaredMetrics(t)
	for name, hist := range map[string]bool{
		"atumdesk_http_request_duration_seconds": true,  // Namespace: Namespace (internal/metrics)
		"atumdesk_kafka_consumer_lag":            false, // string literals
		"atumdesk_imap_messages_total":           false, // Subsystem: a local const
		"atumdesk_sse_rejected_total":            false, // built by a helper from its name parameter
		"atumdesk_sla_tickets_at_risk":           false, // prometheus.NewDesc
		"atumdesk_mail_ingest_total":             false, // the full name in Name
	} {
		require.Contains(t, d, name)
		require.Equal(t, hist, d[name], name)
	}
	t.Logf("%d metrics declared", len(d))
}
