package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/httpapi"
	"github.com/atumdesk/atumdesk/ingest"
	"github.com/atumdesk/atumdesk/internal/auth"
	"github.com/atumdesk/atumdesk/internal/metrics"
	"github.com/atumdesk/atumdesk/internal/seed"
	"github.com/atumdesk/atumdesk/internal/session"
	"github.com/atumdesk/atumdesk/internal/storage"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/models"
	"github.com/atumdesk/atumdesk/pipeline"
)

const demoPassword = "correct horse battery staple"

// stack is one API over its own database and Redis index.
type stack struct {
	t       *testing.T
	srv     *httptest.Server
	api     *httpapi.Server
	db      *gorm.DB
	rdb     *redis.Client
	broker  *pipeline.Broker
	brokers []string
	orgs    map[string]uuid.UUID // slug -> id
	tokens  map[string]string    // e-mail -> access token
	files   *storage.Local       // attachment files
}

// testBroker starts the Kafka-protocol broker on a free loopback port with
// the pipeline's topics and returns a producer for it.
func testBroker(t *testing.T) (*pipeline.Broker, *pipeline.Producer) {
	t.Helper()
	ctx := context.Background()
	b, err := pipeline.StartBroker(ctx, pipeline.BrokerConfig{DataDir: t.TempDir(), Addr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	require.NoError(t, pipeline.EnsureTopics(ctx, b.Addrs(), pipeline.DefaultTopics(1)))
	p := pipeline.NewProducer(b.Addrs(), pipeline.WithMaxAttempts(2), pipeline.WithTimeout(2*time.Second))
	t.Cleanup(func() { _ = p.Close() })
	return b, p
}

// stopBroker takes Kafka away (as an outage would).
func (s *stack) stopBroker() { s.broker.Close() }

// newStack builds the API; opts adjust its dependencies (e.g. a smaller
// attachment limit).
func newStack(t *testing.T, opts ...func(*httpapi.Deps)) *stack {
	t.Helper()
	db, _ := testenv.DB(t)
	rdb := testenv.Redis(t)
	_, err := seed.Demo(context.Background(), db, demoPassword)
	require.NoError(t, err)
	tokens, err := auth.NewTokens([]byte(strings.Repeat("k", 32)), 15*time.Minute)
	require.NoError(t, err)
	broker, producer := testBroker(t)
	files, err := storage.NewLocal(t.TempDir())
	require.NoError(t, err)
	deps := httpapi.Deps{
		Intake:   ingest.New(db, rdb, producer, slog.New(slog.NewTextHandler(io.Discard, nil))),
		Config:   httpapi.Config{CookieSecure: true},
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		DB:       db,
		Redis:    rdb,
		Tokens:   tokens,
		Sessions: session.New(db, rdb, tokens, session.Config{RefreshTTL: time.Hour, MaxFailures: 5, Window: 15 * time.Minute}),
		Metrics:  metrics.New(),
		Tasks:    asynq.NewInspectorFromRedisClient(rdb),
		Files:    files,
		Secrets:  testSecrets(t),
	}
	for _, o := range opts {
		o(&deps)
	}
	api := httpapi.New(deps)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	s := &stack{t: t, srv: srv, api: api, db: db, rdb: rdb, broker: broker, brokers: broker.Addrs(), files: files,
		orgs: map[string]uuid.UUID{}, tokens: map[string]string{}}
	for _, slug := range []string{"acme", "globex"} {
		var id uuid.UUID
		require.NoError(t, db.Raw("SELECT id FROM organizations WHERE slug = ?", slug).Row().Scan(&id))
		s.orgs[slug] = id
	}
	return s
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
	return m
}

func (s *stack) do(method, path, token string, body any) response {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(s.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.srv.URL+path, rd)
	require.NoError(s.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer res.Body.Close()
	if res.Header.Get("Content-Type") == "text/event-stream" {
		return response{res.StatusCode, res.Header, nil} // a stream never ends: headers only
	}
	b, err := io.ReadAll(res.Body)
	require.NoError(s.t, err)
	return response{res.StatusCode, res.Header, b}
}

func (s *stack) login(email string) string {
	s.t.Helper()
	if tok, ok := s.tokens[email]; ok {
		return tok
	}
	res := s.do("POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": demoPassword})
	require.Equal(s.t, 200, res.status, string(res.body))
	tok := res.json(s.t)["access_token"].(string)
	s.tokens[email] = tok
	return tok
}

func (s *stack) userID(email string) uuid.UUID {
	var id uuid.UUID
	require.NoError(s.t, s.db.Raw("SELECT id FROM users WHERE email = ?", email).Row().Scan(&id))
	require.NotEqual(s.t, uuid.Nil, id, email)
	return id
}

func TestLoginRefreshRotationAndReuse(t *testing.T) {
	s := newStack(t)
	res := s.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@acme.test", "password": demoPassword})
	require.Equal(t, 200, res.status, string(res.body))
	tok := res.json(t)
	require.Equal(t, "Bearer", tok["token_type"])
	require.EqualValues(t, 900, tok["expires_in"])
	require.NotEmpty(t, tok["access_token"])
	refresh1 := tok["refresh_token"].(string)
	require.Equal(t, "no-store", res.header.Get("Cache-Control"))
	cookie := res.header.Get("Set-Cookie")
	require.Contains(t, cookie, "HttpOnly")
	require.Contains(t, cookie, "Secure")
	require.Contains(t, cookie, "SameSite=Strict")

	me := s.do("GET", "/api/v1/me", tok["access_token"].(string), nil)
	require.Equal(t, 200, me.status)
	require.Equal(t, "admin", me.json(t)["role"])
	require.NotContains(t, string(me.body), "password")

	// rotation: refresh1 -> refresh2
	res = s.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh1})
	require.Equal(t, 200, res.status, string(res.body))
	refresh2 := res.json(t)["refresh_token"].(string)
	require.NotEqual(t, refresh1, refresh2)

	// reuse of refresh1 is detected and revokes the family, refresh2 included
	res = s.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh1})
	require.Equal(t, 401, res.status)
	require.Equal(t, "application/problem+json", res.header.Get("Content-Type"))
	res = s.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh2})
	require.Equal(t, 401, res.status)
	var reuse int64
	require.NoError(t, s.db.Raw("SELECT count(*) FROM audit_log WHERE action = 'auth.refresh_reuse'").Scan(&reuse).Error)
	require.EqualValues(t, 1, reuse)

	// logout revokes the family of a fresh session
	res = s.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "admin@acme.test", "password": demoPassword})
	refresh3 := res.json(t)["refresh_token"].(string)
	require.Equal(t, 204, s.do("POST", "/api/v1/auth/logout", "", map[string]string{"refresh_token": refresh3}).status)
	require.Equal(t, 401, s.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh3}).status)
}

func TestRefreshFromCookie(t *testing.T) {
	s := newStack(t)
	res := s.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "agent@acme.test", "password": demoPassword})
	require.Equal(t, 200, res.status)
	refresh := res.json(t)["refresh_token"].(string)
	req, _ := http.NewRequest("POST", s.srv.URL+"/api/v1/auth/refresh", nil)
	req.AddCookie(&http.Cookie{Name: "atumdesk_refresh", Value: refresh})
	r, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, 200, r.StatusCode)
}

func TestLoginErrorsAreGeneric(t *testing.T) {
	s := newStack(t)
	wrong := s.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "agent@acme.test", "password": "wrong password 123"})
	unknown := s.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "nobody@acme.test", "password": "wrong password 123"})
	require.Equal(t, 401, wrong.status)
	require.Equal(t, 401, unknown.status)
	w, u := wrong.json(t), unknown.json(t)
	delete(w, "request_id")
	delete(u, "request_id")
	require.Equal(t, w, u, "unknown account and wrong password must look the same")

	bad := s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "", "password": ""})
	require.Equal(t, 422, bad.status)
	require.Contains(t, bad.json(t)["errors"], "email")
	require.Equal(t, 400, s.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "a@b.c", "password": "x", "role": "admin"}).status)
}

func TestLoginLockout(t *testing.T) {
	s := newStack(t)
	// 200 concurrent wrong passwords: at most 5 may reach the password check.
	var wg sync.WaitGroup
	codes := make(chan int, 200)
	for range 200 {
		wg.Go(func() {
			res := s.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "manager@acme.test", "password": "not the password!"})
			codes <- res.status
		})
	}
	wg.Wait()
	close(codes)
	counts := map[int]int{}
	for c := range codes {
		counts[c]++
	}
	require.LessOrEqual(t, counts[401], 5, "%v", counts)
	require.Equal(t, 200, counts[401]+counts[429], "%v", counts)
	var checked int64
	require.NoError(t, s.db.Raw("SELECT count(*) FROM audit_log WHERE action = 'auth.login_failed'").Scan(&checked).Error)
	require.LessOrEqual(t, checked, int64(5))

	// now even the right password is refused, with Retry-After
	res := s.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "manager@acme.test", "password": demoPassword})
	require.Equal(t, 429, res.status)
	require.NotEmpty(t, res.header.Get("Retry-After"))
}

func TestPasswordChangeRevokesSessions(t *testing.T) {
	s := newStack(t)
	res := s.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "agent@acme.test", "password": demoPassword})
	tok := res.json(t)
	access, refresh := tok["access_token"].(string), tok["refresh_token"].(string)
	short := s.do("POST", "/api/v1/auth/password/change", access, map[string]string{"current_password": demoPassword, "new_password": "short"})
	require.Equal(t, 422, short.status)
	wrong := s.do("POST", "/api/v1/auth/password/change", access, map[string]string{"current_password": "nope nope nope", "new_password": "a much longer passphrase"})
	require.Equal(t, 422, wrong.status)
	ok := s.do("POST", "/api/v1/auth/password/change", access, map[string]string{"current_password": demoPassword, "new_password": "a much longer passphrase"})
	require.Equal(t, 204, ok.status, string(ok.body))
	require.Equal(t, 401, s.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh}).status)
	require.Equal(t, 200, s.do("POST", "/api/v1/auth/login", "", map[string]string{"email": "agent@acme.test", "password": "a much longer passphrase"}).status)
}

func TestMassAssignmentAndGrants(t *testing.T) {
	s := newStack(t)
	agent := s.login("agent@acme.test")
	res := s.do("PUT", "/api/v1/me", agent, map[string]any{"name": "Agent", "role": "admin"})
	require.Equal(t, 400, res.status)
	var role string
	require.NoError(t, s.db.Raw("SELECT role FROM users WHERE email = 'agent@acme.test'").Scan(&role).Error)
	require.Equal(t, "agent", role)

	manager := s.login("manager@acme.test")
	// nobody changes their own role
	me := s.userID("manager@acme.test")
	require.Equal(t, 403, s.do("PATCH", "/api/v1/users/"+me.String(), manager, map[string]any{"role": "admin"}).status)
	// only roles strictly below one's own
	require.Equal(t, 403, s.do("POST", "/api/v1/users", manager, map[string]any{"email": "x@acme.test", "name": "X", "role": "manager"}).status)
	require.Equal(t, 201, s.do("POST", "/api/v1/users", manager, map[string]any{"email": "new-agent@acme.test", "name": "New", "role": "agent"}).status)
	require.Equal(t, 409, s.do("POST", "/api/v1/users", manager, map[string]any{"email": "NEW-agent@acme.test", "name": "New", "role": "agent"}).status)
	require.Equal(t, 403, s.do("PATCH", "/api/v1/users/"+s.userID("admin@acme.test").String(), manager, map[string]any{"is_active": false}).status)
	// customer_admin manages customer users only
	cadmin := s.login("customer_admin@acme.test")
	require.Equal(t, 403, s.do("POST", "/api/v1/users", cadmin, map[string]any{"email": "y@acme.test", "name": "Y", "role": "agent"}).status)
	require.Equal(t, 201, s.do("POST", "/api/v1/users", cadmin, map[string]any{"email": "colleague@acme.test", "name": "C", "role": "customer_user"}).status)
	require.Equal(t, 404, s.do("GET", "/api/v1/users/"+s.userID("agent@acme.test").String(), cadmin, nil).status)
	// extra fields are refused
	require.Equal(t, 400, s.do("POST", "/api/v1/users", manager, map[string]any{"email": "z@acme.test", "name": "Z", "role": "agent", "org_id": s.orgs["globex"]}).status)
	// a deactivated user's access token stops working at once
	cu := s.login("customer_user@acme.test")
	require.Equal(t, 204, s.do("DELETE", "/api/v1/users/"+s.userID("customer_user@acme.test").String(), manager, nil).status)
	require.Equal(t, 401, s.do("GET", "/api/v1/me", cu, nil).status)
	var audits int64
	require.NoError(t, s.db.Raw("SELECT count(*) FROM audit_log WHERE action IN ('user.created','user.deactivated')").Scan(&audits).Error)
	require.EqualValues(t, 3, audits)
}

// matrixBodies holds a valid request body for every authenticated route;
// a route missing here fails TestRouteRoleMatrix, so new routes must be
// added to the matrix.
var matrixBodies = map[string]any{
	"POST /api/v1/auth/password/change":   map[string]string{"current_password": "wrong-but-well-formed", "new_password": "another long password"},
	"GET /api/v1/me":                      nil,
	"POST /api/v1/tickets":                map[string]string{"subject": "Printer on fire", "description": "It is burning."},
	"PUT /api/v1/me":                      map[string]string{"name": "Renamed"},
	"GET /api/v1/organizations":           nil,
	"GET /api/v1/organizations/{orgID}":   nil,
	"PATCH /api/v1/organizations/{orgID}": map[string]string{"name": "Acme Corporation"},
	"GET /api/v1/users":                   nil,
	"POST /api/v1/users":                  map[string]string{"email": "matrix-%s@acme.test", "name": "M", "role": "customer_user"},
	"GET /api/v1/users/{userID}":          nil,
	"PATCH /api/v1/users/{userID}":        map[string]string{"name": "Target"},
	"DELETE /api/v1/users/{userID}":       nil,
	"GET /api/v1/stream":                  nil,

	// {ticketID} is a fresh ticket of the org requested by its customer_user
	// (see fill); assigning a new ticket is a 409, which the matrix accepts.
	"GET /api/v1/tickets":                      nil,
	"GET /api/v1/tickets/{ticketID}":           nil,
	"PATCH /api/v1/tickets/{ticketID}":         map[string]string{"priority": "high"},
	"POST /api/v1/tickets/{ticketID}/accept":   nil,
	"POST /api/v1/tickets/{ticketID}/assign":   map[string]string{"assigned_to": uuid.Nil.String()},
	"POST /api/v1/tickets/{ticketID}/status":   map[string]string{"status": "cancelled"},
	"GET /api/v1/tickets/{ticketID}/comments":  nil,
	"POST /api/v1/tickets/{ticketID}/comments": map[string]string{"content": "matrix reply"},
	// A JSON body where multipart is expected is a 415; a new ticket cannot
	// be rated yet (409).
	"GET /api/v1/tickets/{ticketID}/audit":        nil,
	"GET /api/v1/tickets/{ticketID}/attachments":  nil,
	"POST /api/v1/tickets/{ticketID}/attachments": nil,
	"GET /api/v1/tickets/{ticketID}/csat":         nil,
	"POST /api/v1/tickets/{ticketID}/csat":        map[string]any{"rating": 5},
	"POST /api/v1/attachments":                    nil,
	// {attachmentID} is a file on a fresh ticket of the org's customer_user.
	"GET /api/v1/attachments/{attachmentID}": nil,
	"GET /api/v1/audit":                      nil,
	"GET /api/v1/audit/export.csv":           nil,
	"GET /api/v1/csat/metrics":               nil,

	// AI (staff); {ticketID} as above. The draft's ticket travels in the
	// body: the nil id is a 422 here, ai_test.go drafts for real tickets
	// and checks other organisations' ids are 404s.
	"GET /api/v1/ai/triage/{ticketID}":          nil,
	"POST /api/v1/ai/suggest-response":          map[string]string{"ticket_id": uuid.Nil.String()},
	"GET /api/v1/ai/similar-tickets/{ticketID}": nil,
	"GET /api/v1/ai/suggest-kb/{ticketID}":      nil,

	// {queue} is "dedup", {taskID} an archived task (see fill).
	"GET /api/v1/admin/tasks/{queue}/archived":                 nil,
	"POST /api/v1/admin/tasks/{queue}/archived/{taskID}/retry": nil,
	"DELETE /api/v1/admin/tasks/{queue}/archived/{taskID}":     nil,

	// {mailboxID} is a fresh mailbox of the org, {quarantineID} a message
	// quarantined from one (see fill and mailboxes_test.go).
	"GET /api/v1/admin/mailboxes": nil,
	"POST /api/v1/admin/mailboxes": map[string]string{"address": "matrix-%s@acme.test", "imap_host": "imap.acme.test",
		"imap_username": "support", "password": "secret"},
	"GET /api/v1/admin/mailboxes/{mailboxID}":                  nil,
	"PATCH /api/v1/admin/mailboxes/{mailboxID}":                map[string]string{"name": "Support"},
	"DELETE /api/v1/admin/mailboxes/{mailboxID}":               nil,
	"GET /api/v1/admin/mail-quarantine":                        nil,
	"POST /api/v1/admin/mail-quarantine/{quarantineID}/replay": nil,

	// {policyID} is a fresh inactive SLA policy of the org (see fill and
	// sla_test.go); created inactive, so its scope never conflicts.
	"GET /api/v1/sla/policies": nil,
	"POST /api/v1/sla/policies": map[string]any{"name": "Matrix", "is_active": false,
		"targets": []map[string]any{{"priority": "high", "first_response_minutes": 60, "resolution_minutes": 240}}},
	"GET /api/v1/sla/policies/{policyID}":    nil,
	"PATCH /api/v1/sla/policies/{policyID}":  map[string]string{"name": "Renamed"},
	"DELETE /api/v1/sla/policies/{policyID}": nil,
	"GET /api/v1/sla/breaches":               nil,
	"GET /api/v1/sla/metrics":                nil,

	// {serviceID} is a fresh active service of the org (see catalogParams);
	// DELETE removes it (nothing refers to it).
	"GET /api/v1/services":                nil,
	"POST /api/v1/services":               map[string]string{"name": "Matrix %s"},
	"GET /api/v1/services/{serviceID}":    nil,
	"PATCH /api/v1/services/{serviceID}":  map[string]string{"description": "Renamed"},
	"DELETE /api/v1/services/{serviceID}": nil,

	// {cannedID} is a fresh shared response of the org written by its agent
	// (see catalogParams): the agent as author, managers and admins as
	// sharers may change it.
	"GET /api/v1/canned-responses":                   nil,
	"POST /api/v1/canned-responses":                  map[string]string{"title": "Matrix", "content": "Hello {{requester.name}}"},
	"GET /api/v1/canned-responses/{cannedID}":        nil,
	"PATCH /api/v1/canned-responses/{cannedID}":      map[string]string{"title": "Renamed"},
	"DELETE /api/v1/canned-responses/{cannedID}":     nil,
	"GET /api/v1/canned-responses/{cannedID}/render": nil,

	// {categoryID} is a fresh category holding {articleID}, a fresh
	// published public article by the org's agent (see catalogParams):
	// customers read both; an agent's change to it is a 409 (published).
	"GET /api/v1/kb/categories":                      nil,
	"POST /api/v1/kb/categories":                     map[string]string{"name": "Matrix %s"},
	"GET /api/v1/kb/categories/{categoryID}":         nil,
	"PATCH /api/v1/kb/categories/{categoryID}":       map[string]string{"description": "Renamed"},
	"DELETE /api/v1/kb/categories/{categoryID}":      nil,
	"GET /api/v1/kb/articles":                        nil,
	"POST /api/v1/kb/articles":                       map[string]string{"title": "Matrix %s", "content": "How to"},
	"GET /api/v1/kb/articles/{articleID}":            nil,
	"PATCH /api/v1/kb/articles/{articleID}":          map[string]string{"title": "Renamed"},
	"DELETE /api/v1/kb/articles/{articleID}":         nil,
	"POST /api/v1/kb/articles/{articleID}/publish":   nil,
	"POST /api/v1/kb/articles/{articleID}/unpublish": nil,
}

// TestRouteRoleMatrix calls every route of the route table as every role:
// a role without the route's permission gets 403, a role with it does not;
// nobody unauthenticated gets through; and every id of the other
// organisation gives 404, never its data.
func TestRouteRoleMatrix(t *testing.T) {
	s := newStack(t)
	spec := loadSpec(t) // every answer below must be one openapi.yaml documents
	roles := []models.Role{models.RoleCustomerUser, models.RoleCustomerAdmin, models.RoleAgent, models.RoleManager, models.RoleAdmin}
	ownOrg, otherOrg := s.orgs["acme"], s.orgs["globex"]
	otherUser := s.userID("customer_user@globex.test")
	tokens := map[models.Role]string{}
	for _, r := range roles {
		tokens[r] = s.login(string(r) + "@acme.test")
	}
	covered := 0
	for _, rt := range s.api.Routes() {
		if rt.Perm == auth.Public {
			continue
		}
		key := rt.Method + " " + rt.Pattern
		body, ok := matrixBodies[key]
		if !ok {
			t.Errorf("route %s is not in the authorisation matrix", key)
			continue
		}
		covered++
		// unauthenticated
		unauth := s.do(rt.Method, s.fill(rt.Pattern, ownOrg, uuid.New()), "", body)
		require.Equal(t, 401, unauth.status, key)
		spec.conformRoute(t, rt.Method, rt.Pattern, unauth)
		for _, role := range roles {
			// a fresh target in the caller's own org for each call (DELETE consumes it)
			target := s.newCustomer()
			res := s.do(rt.Method, s.fill(rt.Pattern, ownOrg, target), tokens[role], bodyFor(body, role))
			spec.conformRoute(t, rt.Method, rt.Pattern, res)
			if auth.Can(role, rt.Perm) {
				require.NotContains(t, []int{401, 403, 404, 500}, res.status, "%s as %s: %s", key, role, res.body)
			} else {
				require.Equal(t, 403, res.status, "%s as %s: %s", key, role, res.body)
			}
			// {queue} names a queue all organisations share, not an object:
			// the list under it is checked for leaks in TestArchivedTasks.
			if strings.Contains(strings.ReplaceAll(rt.Pattern, "{queue}", ""), "{") && auth.Can(role, rt.Perm) {
				cross := s.do(rt.Method, s.fill(rt.Pattern, otherOrg, otherUser), tokens[role], bodyFor(body, role))
				require.Equal(t, 404, cross.status, "%s as %s across tenants: %s", key, role, cross.body)
				spec.conformRoute(t, rt.Method, rt.Pattern, cross)
				require.NotContains(t, string(cross.body), "globex", key)
			}
		}
	}
	require.Equal(t, len(matrixBodies), covered, "matrix lists routes that no longer exist")
	// the globex customer sees nothing of acme
	g := s.login("customer_user@globex.test")
	require.Equal(t, 404, s.do("GET", "/api/v1/organizations/"+ownOrg.String(), g, nil).status)
	list := s.do("GET", "/api/v1/organizations", g, nil)
	require.NotContains(t, string(list.body), "acme")
}

func (s *stack) newCustomer() uuid.UUID {
	id := uuid.Must(uuid.NewV7())
	require.NoError(s.t, s.db.Exec(`INSERT INTO users (id, org_id, email, name, role, is_active) VALUES (?, ?, ?, 'T', 'customer_user', true)`,
		id, s.orgs["acme"], "target-"+id.String()+"@acme.test").Error)
	return id
}

// fill puts ids of org into pattern; {taskID} becomes a fresh archived task
// of org in queue "dedup".
func (s *stack) fill(pattern string, org, user uuid.UUID) string {
	task := ""
	if strings.Contains(pattern, "{taskID}") {
		task = s.archivedTask(org)
	}
	ticket := ""
	if strings.Contains(pattern, "{ticketID}") {
		ticket = s.newTicket(org, s.orgCustomer(org), "matrix").String()
	}
	attachment := ""
	if strings.Contains(pattern, "{attachmentID}") {
		attachment = s.newAttachment(org).String()
	}
	mailbox, quarantined := "", ""
	if strings.Contains(pattern, "{mailboxID}") {
		mailbox = s.newMailbox(org).String()
	}
	if strings.Contains(pattern, "{quarantineID}") {
		quarantined = s.newQuarantined(s.newMailbox(org)).String()
	}
	policy := ""
	if strings.Contains(pattern, "{policyID}") {
		policy = s.newSLAPolicy(org).String()
	}
	// {serviceID}, {cannedID}, {categoryID}, {articleID}: catalog_test.go.
	return strings.NewReplacer(append([]string{"{orgID}", org.String(), "{userID}", user.String(),
		"{queue}", "dedup", "{taskID}", url.PathEscape(task), "{ticketID}", ticket,
		"{attachmentID}", attachment, "{mailboxID}", mailbox, "{quarantineID}", quarantined,
		"{policyID}", policy}, s.catalogParams(pattern, org)...)...).Replace(pattern)
}

func bodyFor(body any, role models.Role) any {
	if m, ok := body.(map[string]string); ok {
		out := map[string]string{}
		for k, v := range m {
			if strings.Contains(v, "%s") {
				v = fmt.Sprintf(v, strings.ReplaceAll(string(role), "_", "-")+"-"+uuid.NewString()[:8])
			}
			out[k] = v
		}
		return out
	}
	return body
}

func TestProblemJSONAndHealth(t *testing.T) {
	s := newStack(t)
	res := s.do("GET", "/api/v1/nope", "", nil)
	require.Equal(t, 404, res.status)
	require.Equal(t, "application/problem+json", res.header.Get("Content-Type"))
	require.Equal(t, 200, s.do("GET", "/healthz", "", nil).status)
	require.Equal(t, 200, s.do("GET", "/readyz", "", nil).status)
	m := s.do("GET", "/metrics", "", nil)
	require.Equal(t, 200, m.status)
	require.Contains(t, string(m.body), `atumdesk_http_requests_total{code="4xx",method="GET",route="unmatched"}`)
	require.Contains(t, string(m.body), `atumdesk_http_request_duration_seconds_bucket{method="GET",route="/healthz"`)
	require.Contains(t, string(m.body), "go_goroutines")
	admin := s.login("admin@acme.test")
	bad := s.do("PATCH", "/api/v1/organizations/"+s.orgs["acme"].String(), admin, map[string]any{"timezone": "Mars/Olympus", "allowed_ips": []string{"not-an-ip"}})
	require.Equal(t, 422, bad.status)
	errs := bad.json(t)["errors"].(map[string]any)
	require.Contains(t, errs, "timezone")
	require.Contains(t, errs, "allowed_ips")
	// allow-list enforcement: only 10.0.0.0/8 may call; the test client is 127.0.0.1
	require.Equal(t, 200, s.do("PATCH", "/api/v1/organizations/"+s.orgs["acme"].String(), admin, map[string]any{"allowed_ips": []string{"10.0.0.0/8"}}).status)
	require.Equal(t, 403, s.do("GET", "/api/v1/me", admin, nil).status)
}
