package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/atumdesk/atumdesk/httpapi"
	"github.com/atumdesk/atumdesk/internal/auth"
	"github.com/atumdesk/atumdesk/internal/metrics"
	"github.com/atumdesk/atumdesk/models"
)

// apiSpec is httpapi/openapi.yaml decoded into plain maps, with just enough
// of JSON Schema (2020-12, as OpenAPI 3.1 uses it) to check real responses
// against it.
type apiSpec struct {
	root map[string]any
}

var specMethods = []string{"get", "put", "post", "patch", "delete", "head", "options", "trace"}

func loadSpec(t testing.TB) *apiSpec {
	t.Helper()
	b, err := os.ReadFile("openapi.yaml")
	require.NoError(t, err)
	var raw any
	require.NoError(t, yaml.Unmarshal(b, &raw), "openapi.yaml is not YAML")
	root, ok := plainYAML(raw).(map[string]any)
	require.True(t, ok, "openapi.yaml is not a mapping")
	return &apiSpec{root: root}
}

// plainYAML turns what yaml.v3 decodes into JSON's shapes: string-keyed
// maps and float64 numbers.
func plainYAML(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = plainYAML(e)
		}
		return x
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = plainYAML(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = plainYAML(e)
		}
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	}
	return v
}

// resolve follows a local JSON pointer such as #/components/schemas/Ticket.
func (sp *apiSpec) resolve(ref string) (any, error) {
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("%s: only local references are used", ref)
	}
	var cur any = sp.root
	for _, tok := range strings.Split(ptr, "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: %q is not inside an object", ref, tok)
		}
		if cur, ok = m[tok]; !ok {
			return nil, fmt.Errorf("%s: no %q", ref, tok)
		}
	}
	return cur, nil
}

// deref returns node, or what its $ref points to (transitively).
func (sp *apiSpec) deref(node any) map[string]any {
	for range 16 {
		m, _ := node.(map[string]any)
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		var err error
		if node, err = sp.resolve(ref); err != nil {
			return nil
		}
	}
	return nil
}

func (sp *apiSpec) paths() map[string]any {
	p, _ := sp.root["paths"].(map[string]any)
	return p
}

// operation is the operation of method on the documented path pattern.
func (sp *apiSpec) operation(method, pattern string) map[string]any {
	item, _ := sp.paths()[pattern].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	return op
}

// match finds the documented pattern of a concrete path: literal segments
// must be equal, {params} match any one segment, and the pattern with the
// most literal segments wins.
func (sp *apiSpec) match(path string) string {
	path, _, _ = strings.Cut(path, "?")
	segs := strings.Split(path, "/")
	best, bestLit := "", -1
	for pattern := range sp.paths() {
		ps := strings.Split(pattern, "/")
		if len(ps) != len(segs) {
			continue
		}
		lit := 0
		for i, p := range ps {
			if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
				if segs[i] == "" {
					lit = -1
					break
				}
				continue
			}
			if p != segs[i] {
				lit = -1
				break
			}
			lit++
		}
		if lit > bestLit {
			best, bestLit = pattern, lit
		}
	}
	return best
}

// conform checks one real answer against the document: its status is
// documented for the operation, its media type too, and a JSON body
// matches the schema, with no undocumented fields.
func (sp *apiSpec) conform(t testing.TB, method, path string, r response) {
	t.Helper()
	pattern := sp.match(path)
	if sp.operation(method, pattern) == nil {
		t.Errorf("openapi: %s %s: no documented operation", method, path)
		return
	}
	sp.conformRoute(t, method, pattern, r)
}

// conformRoute is conform for a route of the route table; one the document
// lacks is TestOpenAPIDocument's to report.
func (sp *apiSpec) conformRoute(t testing.TB, method, pattern string, r response) {
	t.Helper()
	op := sp.operation(method, pattern)
	if op == nil {
		return
	}
	where := fmt.Sprintf("openapi: %s %s answered %d", method, pattern, r.status)
	responses, _ := op["responses"].(map[string]any)
	resp := responses[strconv.Itoa(r.status)]
	if resp == nil {
		resp = responses[strconv.Itoa(r.status/100)+"XX"]
	}
	if resp == nil {
		t.Errorf("%s: status not documented (body %.300s)", where, r.body)
		return
	}
	content, _ := sp.deref(resp)["content"].(map[string]any)
	ct := r.header.Get("Content-Type")
	if len(content) == 0 {
		if len(r.body) > 0 {
			t.Errorf("%s: a body (%s) where none is documented", where, ct)
		}
		return
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		t.Errorf("%s: Content-Type %q: %v", where, ct, err)
		return
	}
	media, ok := content[mt].(map[string]any)
	if !ok { // a range: image/*, */*
		major, _, _ := strings.Cut(mt, "/")
		if media, ok = content[major+"/*"].(map[string]any); !ok {
			media, ok = content["*/*"].(map[string]any)
		}
	}
	if !ok {
		t.Errorf("%s: media type %s not documented (documented: %v)", where, mt, slices.Sorted(mapKeys(content)))
		return
	}
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	var body any
	if err := dec.Decode(&body); err != nil {
		t.Errorf("%s: body is not JSON: %v", where, err)
		return
	}
	for _, e := range sp.check(media["schema"], body) {
		t.Errorf("%s: %s", where, e)
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// check validates v against schema; every message names where in v.
func (sp *apiSpec) check(schema, v any) []string {
	var errs []string
	sp.validate(schema, v, "$", &errs)
	return errs
}

func (sp *apiSpec) validate(node, v any, at string, errs *[]string) {
	fail := func(format string, args ...any) { *errs = append(*errs, at+": "+fmt.Sprintf(format, args...)) }
	s := sp.deref(node)
	if s == nil {
		if node != nil {
			fail("unresolvable schema %v", node)
		}
		return
	}
	if c, ok := s["const"]; ok && !jsonEqual(c, v) {
		fail("%v is not %v", v, c)
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return jsonEqual(e, v) }) {
		fail("%v is not one of %v", v, enum)
	}
	if branches, ok := s["oneOf"].([]any); ok {
		n := 0
		for _, b := range branches {
			if len(sp.check(b, v)) == 0 {
				n++
			}
		}
		if n != 1 {
			fail("matches %d of the oneOf branches, not exactly one", n)
		}
	}
	if branches, ok := s["anyOf"].([]any); ok && !slices.ContainsFunc(branches, func(b any) bool { return len(sp.check(b, v)) == 0 }) {
		fail("matches none of the anyOf branches")
	}
	if branches, ok := s["allOf"].([]any); ok {
		// One object made of all branches, so that each branch's fields
		// count as documented for the others.
		merged := map[string]any{"type": "object", "properties": map[string]any{}, "required": []any{}}
		for _, b := range branches {
			bs := sp.deref(b)
			for k, p := range asMap(bs["properties"]) {
				merged["properties"].(map[string]any)[k] = p
			}
			if req, ok := bs["required"].([]any); ok {
				merged["required"] = append(merged["required"].([]any), req...)
			}
		}
		sp.validate(merged, v, at, errs)
	}
	if types := schemaTypes(s["type"]); len(types) > 0 && !slices.ContainsFunc(types, func(t string) bool { return isType(v, t) }) {
		fail("%s is not of type %v", jsonKind(v), types)
		return
	}
	switch x := v.(type) {
	case string:
		checkString(s, x, fail)
	case json.Number:
		f, _ := x.Float64()
		if m, ok := s["minimum"].(float64); ok && f < m {
			fail("%v < minimum %v", f, m)
		}
		if m, ok := s["maximum"].(float64); ok && f > m {
			fail("%v > maximum %v", f, m)
		}
	case []any:
		if m, ok := s["minItems"].(float64); ok && float64(len(x)) < m {
			fail("%d items < minItems %v", len(x), m)
		}
		if m, ok := s["maxItems"].(float64); ok && float64(len(x)) > m {
			fail("%d items > maxItems %v", len(x), m)
		}
		if items, ok := s["items"]; ok {
			for i, e := range x {
				sp.validate(items, e, fmt.Sprintf("%s[%d]", at, i), errs)
			}
		}
	case map[string]any:
		sp.validateObject(s, x, at, errs)
	}
}

func (sp *apiSpec) validateObject(s map[string]any, x map[string]any, at string, errs *[]string) {
	if req, ok := s["required"].([]any); ok {
		for _, k := range req {
			if _, ok := x[k.(string)]; !ok {
				*errs = append(*errs, fmt.Sprintf("%s: required field %q is missing", at, k))
			}
		}
	}
	props := asMap(s["properties"])
	extra, hasExtra := s["additionalProperties"]
	for _, k := range slices.Sorted(mapKeys(x)) {
		if p, ok := props[k]; ok {
			sp.validate(p, x[k], at+"."+k, errs)
			continue
		}
		switch {
		case hasExtra && extra == false:
			*errs = append(*errs, fmt.Sprintf("%s: field %q is not allowed", at, k))
		case hasExtra && extra != true:
			sp.validate(extra, x[k], at+"."+k, errs)
		case !hasExtra && props != nil:
			// Strict: a field the handler writes must be documented.
			*errs = append(*errs, fmt.Sprintf("%s: field %q is not documented", at, k))
		}
	}
}

func checkString(s map[string]any, x string, fail func(string, ...any)) {
	n := float64(utf8.RuneCountInString(x))
	if m, ok := s["minLength"].(float64); ok && n < m {
		fail("%q is shorter than %v", x, m)
	}
	if m, ok := s["maxLength"].(float64); ok && n > m {
		fail("%q is longer than %v", x, m)
	}
	if p, ok := s["pattern"].(string); ok {
		if !regexp.MustCompile(p).MatchString(x) {
			fail("%q does not match %s", x, p)
		}
	}
	switch s["format"] {
	case "uuid":
		if _, err := uuid.Parse(x); err != nil {
			fail("%q is not a uuid", x)
		}
	case "date-time":
		if _, err := time.Parse(time.RFC3339Nano, x); err != nil {
			fail("%q is not an RFC 3339 date-time", x)
		}
	case "date":
		if _, err := time.Parse(time.DateOnly, x); err != nil {
			fail("%q is not a date", x)
		}
	}
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func schemaTypes(t any) []string {
	switch x := t.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if f, err := x.Float64(); err == nil && f == math.Trunc(f) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func isType(v any, t string) bool {
	k := jsonKind(v)
	return k == t || (t == "number" && k == "integer")
}

// jsonEqual compares a value from the document with one from a body.
func jsonEqual(doc, body any) bool {
	if n, ok := body.(json.Number); ok {
		f, _ := n.Float64()
		d, ok := doc.(float64)
		return ok && d == f
	}
	return reflect.DeepEqual(doc, body)
}

// infraRoutes answer nothing but their one success: no 4xx to document.
var infraRoutes = []string{"GET /healthz", "GET /readyz", "GET /metrics", "GET /api/v1/openapi.yaml"}

// TestOpenAPIDocument keeps openapi.yaml in step with the route table:
// every route is documented and every documented operation is a route;
// each has a unique operationId, the security requirement of its
// permission (public routes none), the 4xx answers the middleware and
// decodeJSON give (401/403 behind authentication, 404 for ids in the
// path, 400 for JSON bodies), its path parameters, and problem+json for
// every 4xx. The bearer scheme's x-permissions must say exactly which
// roles hold each permission (auth.Can). Every $ref resolves.
func TestOpenAPIDocument(t *testing.T) {
	sp := loadSpec(t)
	require.Equal(t, "3.1.0", sp.root["openapi"])
	api := httpapi.New(httpapi.Deps{Metrics: metrics.New(), Log: slog.New(slog.DiscardHandler)})

	routes := map[string]httpapi.Route{}
	for _, rt := range api.Routes() {
		routes[rt.Method+" "+rt.Pattern] = rt
	}
	documented := map[string]bool{}
	for pattern, item := range sp.paths() {
		for _, m := range specMethods {
			if _, ok := asMap(item)[m]; ok {
				documented[strings.ToUpper(m)+" "+pattern] = true
			}
		}
	}
	for _, key := range slices.Sorted(mapKeys(routes)) {
		if !documented[key] {
			t.Errorf("route %s is not documented in openapi.yaml", key)
		}
	}
	for _, key := range slices.Sorted(mapKeys(documented)) {
		if _, ok := routes[key]; !ok {
			t.Errorf("openapi.yaml documents %s, which is not a route", key)
		}
	}

	perms := asMap(asMap(asMap(asMap(sp.root["components"])["securitySchemes"])["bearer"])["x-permissions"])
	usedPerms := map[string]bool{}
	opIDs := map[string]string{}
	for _, key := range slices.Sorted(mapKeys(routes)) {
		rt := routes[key]
		method, pattern, _ := strings.Cut(key, " ")
		op := sp.operation(method, pattern)
		if op == nil {
			continue
		}
		id, _ := op["operationId"].(string)
		if id == "" {
			t.Errorf("%s: no operationId", key)
		} else if other, dup := opIDs[id]; dup {
			t.Errorf("%s: operationId %s is also %s's", key, id, other)
		}
		opIDs[id] = key

		// Security: explicit on every operation.
		sec, ok := op["security"].([]any)
		switch {
		case !ok:
			t.Errorf("%s: no security requirement (public routes say security: [])", key)
		case rt.Perm == auth.Public:
			for _, req := range sec {
				if _, bearer := asMap(req)["bearer"]; bearer {
					t.Errorf("%s is public but its security requires a bearer token", key)
				}
			}
		default:
			usedPerms[string(rt.Perm)] = true
			want := []any{map[string]any{"bearer": []any{string(rt.Perm)}}}
			if !reflect.DeepEqual(sec, want) {
				t.Errorf("%s: security is %v, want [{bearer: [%s]}] (the route table's permission)", key, sec, rt.Perm)
			}
		}

		// Responses.
		responses := asMap(op["responses"])
		var codes []string
		for code, resp := range responses {
			codes = append(codes, code)
			r := sp.deref(resp)
			if r == nil {
				t.Errorf("%s %s: unresolvable response", key, code)
				continue
			}
			if _, ok := r["description"]; !ok {
				t.Errorf("%s %s: no description", key, code)
			}
			if strings.HasPrefix(code, "4") {
				if _, ok := asMap(r["content"])["application/problem+json"]; !ok {
					t.Errorf("%s %s: a 4xx must be application/problem+json", key, code)
				}
			}
			for mt, media := range asMap(r["content"]) {
				if _, ok := asMap(media)["schema"]; !ok {
					t.Errorf("%s %s %s: no schema", key, code, mt)
				}
			}
		}
		has := func(code string) bool { return slices.Contains(codes, code) }
		if !slices.ContainsFunc(codes, func(c string) bool { return strings.HasPrefix(c, "4") }) && !slices.Contains(infraRoutes, key) {
			t.Errorf("%s: no 4xx response documented", key)
		}
		if !slices.ContainsFunc(codes, func(c string) bool { return strings.HasPrefix(c, "2") || strings.HasPrefix(c, "3") }) {
			t.Errorf("%s: no success response documented", key)
		}
		if rt.Perm != auth.Public {
			for _, c := range []string{"401", "403"} {
				if !has(c) {
					t.Errorf("%s: behind authentication but %s is not documented", key, c)
				}
			}
		}
		if strings.Contains(pattern, "{") && !has("404") {
			t.Errorf("%s: has path parameters but 404 is not documented", key)
		}
		body := sp.deref(op["requestBody"])
		if _, json := asMap(body["content"])["application/json"]; json && !has("400") {
			t.Errorf("%s: takes JSON (decodeJSON) but 400 is not documented", key)
		}

		// Path parameters: exactly those of the pattern, all required.
		declared := map[string]bool{}
		item := asMap(sp.paths()[pattern])
		for _, list := range []any{item["parameters"], op["parameters"]} {
			for _, p := range asSlice(list) {
				pm := sp.deref(p)
				if pm["in"] == "path" {
					declared[pm["name"].(string)] = true
					if pm["required"] != true {
						t.Errorf("%s: path parameter %s must be required", key, pm["name"])
					}
				}
			}
		}
		for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(pattern, -1) {
			if !declared[m[1]] {
				t.Errorf("%s: path parameter %s is not declared", key, m[1])
			}
			delete(declared, m[1])
		}
		for name := range declared {
			t.Errorf("%s: declares path parameter %s, which the path lacks", key, name)
		}
	}

	// x-permissions: who holds each permission the routes use.
	for _, perm := range slices.Sorted(mapKeys(usedPerms)) {
		var want []any
		for _, r := range models.Roles {
			if auth.Can(r, auth.Permission(perm)) {
				want = append(want, string(r))
			}
		}
		if got := perms[perm]; !reflect.DeepEqual(got, want) {
			t.Errorf("x-permissions[%s] is %v, auth.Can says %v", perm, got, want)
		}
	}
	for _, perm := range slices.Sorted(mapKeys(perms)) {
		if !usedPerms[perm] {
			t.Errorf("x-permissions lists %s, which no route requires", perm)
		}
	}

	// Every reference resolves.
	var refs []string
	collectRefs(sp.root, &refs)
	sort.Strings(refs)
	for _, ref := range slices.Compact(refs) {
		if _, err := sp.resolve(ref); err != nil {
			t.Error(err)
		}
	}

	// The document is served as it is in the repository.
	rec := httptest.NewRecorder()
	api.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/openapi.yaml", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/yaml", rec.Header().Get("Content-Type"))
	want, err := os.ReadFile("openapi.yaml")
	require.NoError(t, err)
	require.Equal(t, want, rec.Body.Bytes())
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func collectRefs(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["$ref"].(string); ok {
			*out = append(*out, ref)
		}
		for _, e := range x {
			collectRefs(e, out)
		}
	case []any:
		for _, e := range x {
			collectRefs(e, out)
		}
	}
}

// TestOpenAPIValidator checks the checker: it must catch a missing field,
// an undocumented one, a wrong type and a bad enum value.
func TestOpenAPIValidator(t *testing.T) {
	sp := loadSpec(t)
	decode := func(s string) any {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var v any
		require.NoError(t, dec.Decode(&v))
		return v
	}
	ref := map[string]any{"$ref": "#/components/schemas/Comment"}
	good := `{"id":"` + uuid.NewString() + `","ticket_id":"` + uuid.NewString() + `","author_id":null,"author_name":null,
		"author_is_staff":true,"content":"x","content_html":null,"is_internal":false,"is_ai_generated":false,"channel":"web",
		"created_at":"2026-11-26T10:00:00Z","updated_at":"2026-11-26T10:00:00.123456Z"}`
	require.Empty(t, sp.check(ref, decode(good)))
	for name, bad := range map[string]string{
		"missing":      strings.Replace(good, `"content":"x",`, "", 1),
		"undocumented": strings.Replace(good, `"content":"x",`, `"content":"x","secret":1,`, 1),
		"type":         strings.Replace(good, `"is_internal":false`, `"is_internal":"no"`, 1),
		"enum":         strings.Replace(good, `"channel":"web"`, `"channel":"fax"`, 1),
		"format":       strings.Replace(good, `"created_at":"2026-11-26T10:00:00Z"`, `"created_at":"yesterday"`, 1),
	} {
		require.NotEmpty(t, sp.check(ref, decode(bad)), name)
	}
	// nullable oneOf and integers
	csat := map[string]any{"$ref": "#/components/schemas/CSAT"}
	require.Empty(t, sp.check(csat, decode(`{"state":"not_available","can_respond":false,"survey":null}`)))
	require.NotEmpty(t, sp.check(csat, decode(`{"state":"pending","can_respond":false,"survey":{"id":"x"}}`)))
	answer := map[string]any{"$ref": "#/components/schemas/CSATAnswer"}
	require.NotEmpty(t, sp.check(answer, decode(`{"rating":4.5}`)))
	require.NotEmpty(t, sp.check(answer, decode(`{"rating":6}`)))
	// conform: an undocumented status, a wrong media type, a bad body.
	for name, r := range map[string]response{
		"status": {status: 418, header: http.Header{"Content-Type": {"application/problem+json"}}, body: []byte(`{}`)},
		"media":  {status: 200, header: http.Header{"Content-Type": {"text/plain"}}, body: []byte(`{}`)},
		"body":   {status: 200, header: http.Header{"Content-Type": {"application/json"}}, body: []byte(`{"items":[{"id":1}]}`)},
	} {
		rec := &errRecorder{TB: t}
		sp.conformRoute(rec, "GET", "/api/v1/tickets/{ticketID}/comments", r)
		require.NotEmpty(t, rec.errs, name)
	}
	ok := &errRecorder{TB: t}
	sp.conformRoute(ok, "GET", "/api/v1/tickets/{ticketID}/comments",
		response{status: 200, header: http.Header{"Content-Type": {"application/json"}}, body: []byte(`{"items":[]}`)})
	require.Empty(t, ok.errs)
	require.Equal(t, "/api/v1/audit/export.csv", sp.match("/api/v1/audit/export.csv?from=x"))
	require.Equal(t, "/api/v1/tickets/{ticketID}/comments", sp.match("/api/v1/tickets/"+uuid.NewString()+"/comments"))
	require.Empty(t, sp.match("/api/v1/tickets//comments"))
}

// errRecorder collects the errors a check reports instead of failing.
type errRecorder struct {
	testing.TB
	errs []string
}

func (r *errRecorder) Helper() {}

func (r *errRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
