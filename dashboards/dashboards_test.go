package dashboards

// Checks of the dashboards and rules that need no running atumdesk: the
// JSON's structure, promtool (check and unit tests), every query parsed by
// the real Prometheus of the local stack, and the rule groups loaded there.
// exposed_test.go checks the metric names against the real binary.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/internal/testenv"
)

// datasourceRef is the only data source a panel, target or variable may
// name: the dashboard's ${datasource} variable (no hard-coded UIDs).
var datasourceRef = dsRef{Type: "prometheus", UID: "${datasource}"}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashboard struct {
	file          string
	raw           any
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Panels        []panel
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID          int     `json:"id"`
	Type        string  `json:"type"`
	Title       string  `json:"title"`
	Datasource  *dsRef  `json:"datasource"`
	Panels      []panel `json:"panels"` // a collapsed row's panels
	Targets     []target
	GridPos     *struct{ H, W, X, Y int } `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

type target struct {
	Datasource *dsRef `json:"datasource"`
	RefID      string `json:"refId"`
	Expr       string `json:"expr"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *dsRef          `json:"datasource"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

// query is a query variable's PromQL-ish query (label_values(...)).
func (v variable) query() string {
	var q struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(v.Query, &q) == nil && q.Query != "" {
		return q.Query
	}
	var s string
	if json.Unmarshal(v.Query, &s) == nil && s != "" {
		return s
	}
	return v.Definition
}

// loadDashboards reads every embedded dashboard.
func loadDashboards(t *testing.T) []dashboard {
	t.Helper()
	names, err := fs.Glob(Files, "grafana/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, names, "no dashboards embedded")
	var out []dashboard
	for _, name := range names {
		b, err := Files.ReadFile(name)
		require.NoError(t, err)
		d := dashboard{file: name}
		require.NoError(t, json.Unmarshal(b, &d), name)
		require.NoError(t, json.Unmarshal(b, &d.raw), name)
		out = append(out, d)
	}
	return out
}

// allPanels flattens rows: the panels of collapsed rows are nested.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// panelTypes lists the panel types used, each with whether it queries.
var panelTypes = map[string]bool{"row": false, "text": false, "timeseries": true, "stat": true, "bargauge": true,
	"gauge": true, "table": true, "barchart": true, "piechart": true, "heatmap": true}

// units are the Grafana unit ids the dashboards may use; a typo would show
// raw numbers.
var units = map[string]bool{"s": true, "ms": true, "short": true, "none": true, "percentunit": true,
	"reqps": true, "cps": true, "ops": true, "bytes": true, "decbytes": true}

// builtinVars are Grafana's own variables and what a test puts in their
// place.
var builtinVars = map[string]string{"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}

var varRE = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}?`)

// expandGrafana makes a Prometheus query of a dashboard query: builtin
// intervals become durations, template variables (all used in =~
// matchers) match anything.
func expandGrafana(expr string) string {
	return varRE.ReplaceAllStringFunc(expr, func(m string) string {
		name := varRE.FindStringSubmatch(m)[1]
		if d, ok := builtinVars[name]; ok {
			return d
		}
		return ".*"
	})
}

func TestDashboardStructure(t *testing.T) {
	ds := loadDashboards(t)
	require.GreaterOrEqual(t, len(ds), 4, "SLA, pipeline, API and e-mail dashboards")
	uids := map[string]string{}
	for _, d := range ds {
		t.Run(path.Base(d.file), func(t *testing.T) {
			require.NotEmpty(t, d.UID)
			require.Equal(t, strings.TrimSuffix(path.Base(d.file), ".json"), d.UID, "file named after the uid")
			require.NotContains(t, uids, d.UID, "uid also used by %s", uids[d.UID])
			uids[d.UID] = d.file
			require.NotEmpty(t, d.Title)
			require.GreaterOrEqual(t, d.SchemaVersion, 36)
			require.LessOrEqual(t, d.SchemaVersion, 41)

			// exactly one data source variable, of Prometheus; query
			// variables read from it
			vars := map[string]bool{}
			dsVars := 0
			for _, v := range d.Templating.List {
				require.NotEmpty(t, v.Name)
				require.False(t, vars[v.Name], "variable %s twice", v.Name)
				vars[v.Name] = true
				switch v.Type {
				case "datasource":
					dsVars++
					require.Equal(t, "datasource", v.Name)
					require.JSONEq(t, `"prometheus"`, string(v.Query), "the data source variable lists Prometheus data sources")
				case "query":
					require.Equal(t, &datasourceRef, v.Datasource, "variable %s", v.Name)
					require.NotEmpty(t, v.query(), "variable %s has no query", v.Name)
					if v.IncludeAll {
						require.Equal(t, ".*", v.AllValue, "variable %s: All must match every value, also ones not listed yet", v.Name)
					}
				default:
					t.Errorf("variable %s: type %q not expected", v.Name, v.Type)
				}
			}
			require.Equal(t, 1, dsVars, "one ${datasource} variable")

			ids := map[int]string{}
			queries := 0
			for _, p := range allPanels(d.Panels) {
				where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
				require.Positive(t, p.ID, where)
				require.NotContains(t, ids, p.ID, "%s: id also used by %q", where, ids[p.ID])
				ids[p.ID] = p.Title
				require.NotEmpty(t, p.Title, where)
				queriesData, known := panelTypes[p.Type]
				require.True(t, known, "%s: panel type %q", where, p.Type)
				require.NotNil(t, p.GridPos, where)
				require.True(t, p.GridPos.W > 0 && p.GridPos.H > 0 && p.GridPos.X >= 0 && p.GridPos.X+p.GridPos.W <= 24,
					"%s: gridPos %+v", where, *p.GridPos)
				if !queriesData {
					require.Empty(t, p.Targets, where)
					continue
				}
				require.Equal(t, &datasourceRef, p.Datasource, "%s: data source", where)
				require.NotEmpty(t, p.Targets, "%s: no targets", where)
				require.True(t, units[p.FieldConfig.Defaults.Unit], "%s: unit %q", where, p.FieldConfig.Defaults.Unit)
				refs := map[string]bool{}
				for _, tg := range p.Targets {
					require.NotEmpty(t, tg.RefID, where)
					require.False(t, refs[tg.RefID], "%s: refId %s twice", where, tg.RefID)
					refs[tg.RefID] = true
					require.Equal(t, &datasourceRef, tg.Datasource, "%s %s: data source", where, tg.RefID)
					require.NotEmpty(t, strings.TrimSpace(tg.Expr), "%s %s: empty expr", where, tg.RefID)
					for _, m := range varRE.FindAllStringSubmatch(tg.Expr, -1) {
						_, builtin := builtinVars[m[1]]
						require.True(t, builtin || vars[m[1]], "%s %s: $%s is not a variable of the dashboard", where, tg.RefID, m[1])
					}
					queries++
				}
			}
			require.Positive(t, queries)

			// No data source anywhere but the variable (and Grafana's own
			// built-in annotation).
			walkDatasources(d.raw, func(jsonPath string, v any) {
				if ref, ok := v.(map[string]any); ok {
					if ref["type"] == "grafana" && ref["uid"] == "-- Grafana --" && strings.HasPrefix(jsonPath, ".annotations.") {
						return
					}
					if ref["type"] == datasourceRef.Type && ref["uid"] == datasourceRef.UID {
						return
					}
				}
				t.Errorf("%s: data source %v is not ${datasource}", jsonPath, v)
			})
			_, hasInputs := d.raw.(map[string]any)["__inputs"]
			require.False(t, hasInputs, "__inputs (DS_ placeholders) are not used: the ${datasource} variable is")
		})
	}
}

// walkDatasources calls f for every value of a "datasource" key.
func walkDatasources(v any, f func(path string, v any)) {
	var walk func(p string, v any)
	walk = func(p string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "datasource" {
					f(p+"."+k, e)
					continue
				}
				walk(p+"."+k, e)
			}
		case []any:
			for i, e := range x {
				walk(p+"["+strconv.Itoa(i)+"]", e)
			}
		}
	}
	walk("", v)
}

// query is one PromQL expression and where it comes from.
type query struct {
	where string
	expr  string // as Prometheus takes it (Grafana variables expanded)
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$`)

// dashboardQueries are every panel query and the metric selector of every
// label_values variable, expanded for Prometheus.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	var out []query
	for _, d := range loadDashboards(t) {
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			m := labelValuesRE.FindStringSubmatch(strings.TrimSpace(v.query()))
			require.NotNil(t, m, "%s: variable %s: only label_values(selector, label) is used", d.UID, v.Name)
			out = append(out, query{where: d.UID + " variable " + v.Name, expr: expandGrafana(m[1])})
		}
		for _, p := range allPanels(d.Panels) {
			for _, tg := range p.Targets {
				out = append(out, query{where: fmt.Sprintf("%s panel %q %s", d.UID, p.Title, tg.RefID), expr: expandGrafana(tg.Expr)})
			}
		}
	}
	return out
}

// --- promtool ---------------------------------------------------------------

func rulesDir() string { return filepath.Join(testenv.RepoRoot(), "dashboards", "rules") }

func promtool(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool (Debian package prometheus, installed by deploy/local/stack.sh up)")
	cmd := exec.Command(bin, args...)
	cmd.Dir = rulesDir()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

var ruleCountRE = regexp.MustCompile(`Checking (\S+)\s+SUCCESS: (\d+) rules found`)

// checkRules runs promtool check rules on every rule file and returns the
// number of rules of each (by file name).
func checkRules(t *testing.T) map[string]int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(rulesDir(), "*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	args := []string{"check", "rules"}
	for _, f := range files {
		args = append(args, filepath.Base(f))
	}
	out := promtool(t, args...)
	counts := map[string]int{}
	for _, m := range ruleCountRE.FindAllStringSubmatch(out, -1) {
		counts[m[1]], _ = strconv.Atoi(m[2])
	}
	require.Len(t, counts, len(files), "promtool output:\n%s", out)
	return counts
}

func TestPromtool(t *testing.T) {
	counts := checkRules(t)
	t.Logf("promtool check rules: %v", counts)
	tests, err := filepath.Glob(filepath.Join(rulesDir(), "tests", "*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, tests, "rules/tests/*.yml")
	args := []string{"test", "rules"}
	for _, f := range tests {
		args = append(args, filepath.Join("tests", filepath.Base(f)))
	}
	out := promtool(t, args...)
	require.Contains(t, out, "SUCCESS")
}

// --- the real Prometheus -----------------------------------------------------

func prometheusURL() string {
	if u := os.Getenv("ATUMDESK_PROMETHEUS_URL"); u != "" {
		return strings.TrimRight(u, "/")
	}
	return "http://127.0.0.1:19090"
}

var httpClient = &http.Client{Timeout: 15 * time.Second}

// promAPI calls a Prometheus API endpoint and decodes data into out; a
// Prometheus error (bad_data for a query that does not parse) is returned.
func promAPI(ctx context.Context, method, endpoint string, params url.Values, out any) error {
	u := prometheusURL() + endpoint
	var body io.Reader
	if method == http.MethodGet {
		u += "?" + params.Encode()
	} else {
		body = strings.NewReader(params.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("prometheus at %s (deploy/local/stack.sh up): %w", prometheusURL(), err)
	}
	defer res.Body.Close()
	var env struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s %s: %s: %w", method, endpoint, res.Status, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", env.ErrorType, env.Error)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(env.Data, out)
}

// reloadPrometheus makes Prometheus read its configuration and rule files
// again (it runs with --web.enable-lifecycle, deploy/local/stack.sh).
func reloadPrometheus(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, prometheusURL()+"/-/reload", nil)
	if err != nil {
		return err
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("prometheus reload: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return fmt.Errorf("prometheus reload: %s: %s", res.Status, b)
	}
	return nil
}

type sample struct {
	Metric map[string]string `json:"metric"`
}

// instantQuery evaluates q now.
func instantQuery(ctx context.Context, q string) ([]sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := promAPI(ctx, http.MethodGet, "/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, nil // scalar or string: fine, nothing to list
	}
	var out []sample
	return out, json.Unmarshal(data.Result, &out)
}

func TestQueriesParse(t *testing.T) {
	ctx := context.Background()
	qs := dashboardQueries(t)
	for _, q := range qs {
		_, err := instantQuery(ctx, q.expr)
		require.NoError(t, err, "%s: %s", q.where, q.expr)
	}
	t.Logf("%d dashboard queries accepted by Prometheus", len(qs))
}

type ruleGroup struct {
	Name  string `json:"name"`
	File  string `json:"file"`
	Rules []struct {
		Name           string    `json:"name"`
		Query          string    `json:"query"`
		Type           string    `json:"type"` // recording, alerting
		Health         string    `json:"health"`
		LastError      string    `json:"lastError"`
		LastEvaluation time.Time `json:"lastEvaluation"`
	} `json:"rules"`
}

// loadedRules has the real Prometheus reload its configuration (it runs
// with --web.enable-lifecycle, deploy/local/stack.sh) and returns this
// package's rule groups once every rule was evaluated after the reload.
// The rule files must pass promtool first: a broken file would only make
// the reload fail.
func loadedRules(t *testing.T) []ruleGroup {
	t.Helper()
	counts := checkRules(t)
	ctx := context.Background()
	reloaded := time.Now()
	require.NoError(t, reloadPrometheus(ctx))
	var groups []ruleGroup
	var problems []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		var data struct {
			Groups []ruleGroup `json:"groups"`
		}
		require.NoError(t, promAPI(ctx, http.MethodGet, "/api/v1/rules", nil, &data))
		groups, problems = nil, nil
		perFile := map[string]int{}
		for _, g := range data.Groups {
			if filepath.Dir(g.File) != rulesDir() {
				continue
			}
			groups = append(groups, g)
			perFile[filepath.Base(g.File)] += len(g.Rules)
			for _, r := range g.Rules {
				switch {
				case r.LastEvaluation.Before(reloaded):
					problems = append(problems, fmt.Sprintf("%s/%s: not evaluated since the reload", g.Name, r.Name))
				case r.Health != "ok":
					problems = append(problems, fmt.Sprintf("%s/%s: health %s: %s", g.Name, r.Name, r.Health, r.LastError))
				}
			}
		}
		for file, n := range counts {
			if perFile[file] != n {
				problems = append(problems, fmt.Sprintf("%s: Prometheus has %d rules loaded, promtool found %d", file, perFile[file], n))
			}
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	require.Empty(t, problems, "rule groups in Prometheus at %s", prometheusURL())
	return groups
}

func TestRulesLoaded(t *testing.T) {
	groups := loadedRules(t)
	var names []string
	n := 0
	for _, g := range groups {
		names = append(names, g.Name)
		n += len(g.Rules)
	}
	sort.Strings(names)
	t.Logf("loaded with health ok: groups %v, %d rules", names, n)
}

// --- metric names in PromQL --------------------------------------------------

// aggregators and keywords are identifiers that are never metric names
// (functions are recognised by the parenthesis that follows them).
var nonMetricWords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
	"count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true, "inf": true, "nan": true,
}

// labelListWords are followed by a parenthesised list of label names.
var labelListWords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// selector is a metric name with the label matchers written with it.
type selector struct {
	name     string
	matchers []matcher
}

type matcher struct{ label, op, value string }

// selectors returns the vector selectors of an expression. It is a
// tokenizer, not a parser (Prometheus 2.42 has no parse endpoint and the
// promql package is not a dependency): string literals, ranges, label
// lists and numbers are skipped; an identifier followed by "(" is a
// function. Prometheus itself checks that the expression parses.
func selectors(expr string) ([]selector, error) {
	var out []selector
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	i, n := 0, len(expr)
	skipSpace := func(j int) int {
		for j < n && strings.ContainsRune(" \t\r\n", rune(expr[j])) {
			j++
		}
		return j
	}
	// skipString returns the index after the string literal at j.
	skipString := func(j int) (int, error) {
		q := expr[j]
		k := j + 1
		for k < n && expr[k] != q {
			if expr[k] == '\\' && q != '`' {
				k++
			}
			k++
		}
		if k >= n {
			return k, fmt.Errorf("unterminated string in %q", expr)
		}
		return k + 1, nil
	}
	// skipTo skips a bracketed part from its opening character to the
	// matching close, stepping over strings.
	skipTo := func(j int, open, close byte) (int, error) {
		depth := 0
		for j < n {
			switch c := expr[j]; c {
			case '"', '\'', '`':
				k, err := skipString(j)
				if err != nil {
					return k, err
				}
				j = k
				continue
			case open:
				depth++
			case close:
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
			j++
		}
		return j, fmt.Errorf("unbalanced %c in %q", open, expr)
	}
	for i < n {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			k, err := skipString(i)
			if err != nil {
				return nil, err
			}
			i = k
		case c == '#':
			for i < n && expr[i] != '\n' {
				i++
			}
		case c == '{':
			return nil, fmt.Errorf("a selector without a metric name cannot be checked: %q", expr)
		case c == '[':
			j, err := skipTo(i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = j
		case c >= '0' && c <= '9' || c == '.' && i+1 < n && expr[i+1] >= '0' && expr[i+1] <= '9':
			for i < n && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < n && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := skipSpace(j)
			switch {
			case labelListWords[word]:
				if k < n && expr[k] == '(' {
					end, err := skipTo(k, '(', ')')
					if err != nil {
						return nil, err
					}
					j = end
				}
			case nonMetricWords[word]:
			case k < n && expr[k] == '(':
				// a function call
			default:
				sel := selector{name: word}
				if k < n && expr[k] == '{' {
					end, err := skipTo(k, '{', '}')
					if err != nil {
						return nil, err
					}
					if sel.matchers, err = parseMatchers(expr[k+1 : end-1]); err != nil {
						return nil, fmt.Errorf("%w in %q", err, expr)
					}
					j = end
				}
				out = append(out, sel)
			}
			i = j
		default:
			i++
		}
	}
	return out, nil
}

var matcherRE = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)`)

// parseMatchers reads `label op "value", ...` (double-quoted values, as
// the dashboards and Prometheus's rule printer write them).
func parseMatchers(s string) ([]matcher, error) {
	var out []matcher
	for strings.TrimSpace(s) != "" {
		m := matcherRE.FindStringSubmatch(s)
		if m == nil {
			return nil, fmt.Errorf("label matchers %q", s)
		}
		v, err := strconv.Unquote(`"` + m[3] + `"`)
		if err != nil {
			return nil, fmt.Errorf("label value %q: %w", m[3], err)
		}
		if m[1] == "__name__" {
			return nil, fmt.Errorf("a selector by __name__ cannot be checked")
		}
		out = append(out, matcher{label: m[1], op: m[2], value: v})
		s = s[len(m[0]):]
	}
	return out, nil
}

// metricNames returns the distinct metric names an expression selects.
func metricNames(expr string) ([]string, error) {
	sels, err := selectors(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range sels {
		if !slices.Contains(names, s.name) {
			names = append(names, s.name)
		}
	}
	return names, nil
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up{job="atumdesk"} == 0`, []string{"up"}},
		{`sum by (route, le) (rate(a_bucket{route!~"/api/v1/stream|/x{y}"}[5m]))`, []string{"a_bucket"}},
		{`histogram_quantile(0.99, sum without (instance) (increase(b_bucket[$__range])))`, []string{"b_bucket"}},
		{"max by (q) (c) > 1000 and max by (q) (deriv(c[10m])) > 0", []string{"c"}},
		{`(increase(d[10m]) and d offset 10m) or (d unless d offset 10m)`, []string{"d"}},
		{`sum(rate(e{code="5xx"}[5m])) / on () group_left (x) f:rec:rate5m`, []string{"e", "f:rec:rate5m"}},
		{`count(g == 0) or vector(0)`, []string{"g"}},
		{`topk(10, h) * 1e3 + .5 - 0x1f`, []string{"h"}},
		{`label_replace(i, "dst", "$1", "src", "(.*)")`, []string{"i"}},
		{`sum(j) by (k)`, []string{"j"}},
		{"sum(l)\n# a comment naming m\n+ n", []string{"l", "n"}},
		{`process_open_fds{job="atumdesk"} / process_max_fds{job="atumdesk"}`, []string{"process_open_fds", "process_max_fds"}},
	} {
		got, err := metricNames(tc.expr)
		require.NoError(t, err, tc.expr)
		require.Equal(t, tc.want, got, tc.expr)
	}
	for _, bad := range []string{`{__name__=~"a|b"}`, `a{__name__="b"}`, `sum(a{b="c"`, `a{b=c}`, `a{b="c}`} {
		_, err := metricNames(bad)
		require.Error(t, err, bad)
	}
	sels, err := selectors(`sum by (le) (rate(a_bucket{route!~"/x{y}|/z", le = "3600",code="5\"xx"}[5m])) / b{}`)
	require.NoError(t, err)
	require.Equal(t, []selector{
		{name: "a_bucket", matchers: []matcher{{"route", "!~", "/x{y}|/z"}, {"le", "=", "3600"}, {"code", "=", `5"xx`}}},
		{name: "b"},
	}, sels)
}

// references are the metric names the dashboards and the loaded rules
// select, each with where it is used, and every selector. Recording rule
// outputs are kept apart (they are not scraped).
type references struct {
	scraped, recorded map[string][]string
	selectors         []located
}

type located struct {
	where string
	sel   selector
}

func referencedNames(t *testing.T, groups []ruleGroup) references {
	t.Helper()
	refs := references{scraped: map[string][]string{}, recorded: map[string][]string{}}
	records := map[string]bool{}
	qs := dashboardQueries(t)
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Type == "recording" {
				records[r.Name] = true
			}
			qs = append(qs, query{where: "rule " + g.Name + "/" + r.Name, expr: r.Query})
		}
	}
	for _, q := range qs {
		sels, err := selectors(q.expr)
		require.NoError(t, err, q.where)
		require.NotEmpty(t, sels, "%s selects no metric: %s", q.where, q.expr)
		for _, sel := range sels {
			refs.selectors = append(refs.selectors, located{q.where, sel})
			m := refs.scraped
			if strings.Contains(sel.name, ":") {
				require.True(t, records[sel.name], "%s: %s is no recording rule of dashboards/rules", q.where, sel.name)
				m = refs.recorded
			}
			if !slices.Contains(m[sel.name], q.where) {
				m[sel.name] = append(m[sel.name], q.where)
			}
		}
	}
	return refs
}
