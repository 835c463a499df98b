package main

// Static checks of the deployment artefacts in deploy/: the systemd units
// (systemd-analyze verify), the nginx site (nginx -t of both variants) and
// the Kubernetes manifests. Every command line must be one this binary
// accepts (its usage text, workers.ParseQueues), and every ATUMDESK_*
// variable one internal/config declares, with values config.Load accepts.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/atumdesk/atumdesk/internal/config"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/pipeline"
	"github.com/atumdesk/atumdesk/workers"
)

const deployBinary = "/usr/local/bin/atumdesk"

func deployDir(parts ...string) string {
	return filepath.Join(append([]string{testenv.RepoRoot(), "deploy"}, parts...)...)
}

// configVars is every variable internal/config declares.
func configVars() map[string]bool {
	out := map[string]bool{}
	t := reflect.TypeFor[config.Config]()
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("env"); tag != "" && tag != "-" {
			out[config.Prefix+tag] = true
		}
	}
	return out
}

// checkEnv fails for an ATUMDESK_* name config does not declare, and for a
// set of values config.Load rejects.
func checkEnv(t *testing.T, where string, env map[string]string) {
	t.Helper()
	known := configVars()
	for k := range env {
		if strings.HasPrefix(k, config.Prefix) {
			require.True(t, known[k], "%s: %s is not a setting of internal/config", where, k)
		}
	}
	_, err := config.Load(env)
	require.NoError(t, err, "%s: config.Load", where)
}

// usageLines maps each subcommand of the usage text to its line.
func usageLines() map[string]string {
	out := map[string]string{}
	for line := range strings.SplitSeq(usage, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "atumdesk" {
			out[f[1]] = line
		}
	}
	return out
}

// checkCommand fails unless args is a command line of this binary: a
// subcommand of the usage text, flags its usage line names, a valid queue
// spec for worker, a listed action for migrate.
func checkCommand(t *testing.T, where string, args []string) {
	t.Helper()
	require.NotEmpty(t, args, where)
	line, ok := usageLines()[args[0]]
	require.True(t, ok, "%s: %q is not an atumdesk subcommand", where, args[0])
	for i := 1; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
			require.Regexp(t, `(^|[\s\[])-{1,2}`+regexp.QuoteMeta(name)+`\b`, line, "%s: flag %s of %q", where, a, args[0])
			if name == "queues" {
				if !hasVal {
					require.Less(t, i+1, len(args), "%s: --queues without a value", where)
					i++
					val = args[i]
				}
				q, err := workers.ParseQueues(val)
				require.NoError(t, err, "%s", where)
				require.NotEmpty(t, q)
			}
			continue
		}
		// A positional argument: one of the alternatives the usage line
		// lists right after the subcommand (`migrate up|status`).
		words := strings.Fields(line)
		var alts []string
		if len(words) > 2 && !strings.HasPrefix(words[2], "[") && !strings.HasPrefix(words[2], "-") {
			alts = strings.Split(words[2], "|")
		}
		require.Contains(t, alts, a, "%s: argument %q of %q", where, a, args[0])
	}
}

// --- systemd ------------------------------------------------------------------

// unitFile is a parsed unit: section → key → values in order.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	u := unitFile{}
	section := ""
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			require.True(t, ok, "%s: %q", path, line)
			require.NotEmpty(t, section, "%s: %q outside a section", path, line)
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unitFile) one(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// readEnvFile reads KEY=VALUE lines (systemd EnvironmentFile syntax as used
// here: comments, blank lines, optional double quotes).
func readEnvFile(t *testing.T, path string) map[string]string {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "%s: %q", path, line)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	require.NoError(t, sc.Err())
	return out
}

// systemdInstance is one unit as it would run on a host.
type systemdInstance struct {
	template string // file name
	instance string // unescaped instance ("" for plain units)
}

func (s systemdInstance) name(t *testing.T) string {
	if s.instance == "" {
		return s.template
	}
	out, err := exec.Command("systemd-escape", "--template="+s.template, s.instance).Output()
	require.NoError(t, err, "systemd-escape")
	return strings.TrimSpace(string(out))
}

func TestSystemdUnits(t *testing.T) {
	dir := deployDir("systemd")
	shared := readEnvFile(t, filepath.Join(dir, "atumdesk.env"))
	checkEnv(t, "atumdesk.env", shared)
	require.NotEmpty(t, shared["ATUMDESK_KAFKA_BROKERS"], "only `atumdesk all` embeds a broker: the units need a cluster")

	specs, err := filepath.Glob(filepath.Join(dir, "worker.d", "*.env"))
	require.NoError(t, err)
	require.NotEmpty(t, specs)
	run := []systemdInstance{{template: "atumdesk-api@.service", instance: "8081"}, {template: "atumdesk-api@.service", instance: "8082"},
		{template: "atumdesk-pipeline.service"}, {template: "atumdesk-imap.service"}, {template: "atumdesk-migrate.service"}}
	served := map[string]bool{}
	for _, p := range specs {
		spec := strings.TrimSuffix(filepath.Base(p), ".env")
		q, err := workers.ParseQueues(spec)
		require.NoError(t, err, "worker.d/%s", filepath.Base(p))
		for name := range q {
			require.False(t, served[name], "queue %s served by two worker instances", name)
			served[name] = true
		}
		run = append(run, systemdInstance{template: "atumdesk-worker@.service", instance: spec})
	}
	require.ElementsMatch(t, pipeline.Queues, slices.Collect(maps.Keys(served)), "the example worker instances serve every queue once")

	listens := map[string]string{} // address → unit: no two processes of one host on one port
	for _, inst := range run {
		where := inst.name(t)
		u := parseUnit(t, filepath.Join(dir, inst.template))
		svc := u["Service"]
		require.NotNil(t, svc, where)
		expand := strings.NewReplacer("%i", inst.instance, "%I", inst.instance).Replace

		// The command line is one this binary accepts.
		exe := strings.Fields(expand(u.one("Service", "ExecStart")))
		require.Equal(t, deployBinary, exe[0], where)
		checkCommand(t, where, exe[1:])

		// Its environment: the shared file, the unit's own, the instance's file.
		env := maps.Clone(shared)
		files := svc["EnvironmentFile"]
		require.Equal(t, "/etc/atumdesk/atumdesk.env", files[0], where)
		for _, f := range files[1:] {
			f = expand(f)
			require.True(t, strings.HasPrefix(f, "/etc/atumdesk/worker.d/"), "%s: %s", where, f)
			maps.Copy(env, readEnvFile(t, filepath.Join(dir, "worker.d", filepath.Base(f))))
		}
		for _, kv := range svc["Environment"] {
			k, v, _ := strings.Cut(expand(kv), "=")
			env[k] = v
		}
		checkEnv(t, where, env)
		if exe[1] != "migrate" {
			key := "ATUMDESK_METRICS_ADDR"
			if exe[1] == "api" {
				key = "ATUMDESK_HTTP_ADDR"
			}
			addr := env[key]
			require.NotEmpty(t, addr, "%s sets its own %s", where, key)
			require.Empty(t, listens[addr], "%s and %s both listen on %s", where, listens[addr], addr)
			listens[addr] = where
		}

		// Ordering after the migrations, and the hardening.
		if exe[1] == "migrate" {
			require.Equal(t, "oneshot", u.one("Service", "Type"), where)
			require.Equal(t, "yes", u.one("Service", "RemainAfterExit"), where)
		} else {
			require.Contains(t, u["Unit"]["Requires"], "atumdesk-migrate.service", where)
			require.Contains(t, strings.Fields(strings.Join(u["Unit"]["After"], " ")), "atumdesk-migrate.service", where)
			require.Equal(t, []string{"atumdesk.target"}, u["Install"]["WantedBy"], where)
		}
		for k, v := range map[string]string{"User": "atumdesk", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
			"ProtectSystem": "strict", "ProtectHome": "yes", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
			"CapabilityBoundingSet": "", "MemoryDenyWriteExecute": "yes"} {
			require.Equal(t, v, u.one("Service", k), "%s: %s", where, k)
		}
		require.NotEmpty(t, u.one("Service", "MemoryMax"), where)
		if sd := u.one("Service", "StateDirectory"); sd != "" {
			require.Equal(t, "/var/lib/"+sd, u.one("Service", "ReadWritePaths"), where)
			for _, k := range []string{"ATUMDESK_STORAGE_DIR", "ATUMDESK_MAIL_RAW_DIR"} {
				require.True(t, strings.HasPrefix(env[k], "/var/lib/"+sd+"/"), "%s: %s=%s outside its writable StateDirectory", where, k, env[k])
			}
		}
	}

	// systemd's own verdict, offline: the units with ExecStart pointing at
	// the binary under test (verify checks that it is executable).
	tmp := t.TempDir()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".service") || strings.HasSuffix(e.Name(), ".target")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(tmp, e.Name()), bytes.ReplaceAll(b, []byte(deployBinary), []byte(binary)), 0o644))
	}
	args := []string{"verify", "--man=no"}
	for _, inst := range run {
		args = append(args, filepath.Join(tmp, inst.name(t)))
	}
	args = append(args, filepath.Join(tmp, "atumdesk.target"))
	out, err := exec.Command("systemd-analyze", args...).CombinedOutput()
	require.NoError(t, err, "systemd-analyze %v:\n%s", args, out)
	require.Empty(t, strings.TrimSpace(string(out)), "systemd-analyze verify complains")
}

// --- nginx ----------------------------------------------------------------------

func TestNginxSite(t *testing.T) {
	// nginx -t of the site as shipped and of its TLS variant (warnings fail).
	cmd := exec.Command("bash", deployDir("local", "nginx.sh"), "check")
	cmd.Env = append(os.Environ(), "ATUMDESK_NGINX_LISTEN=127.0.0.1:18443")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "nginx.sh check:\n%s", out)

	b, err := os.ReadFile(deployDir("nginx", "atumdesk.conf"))
	require.NoError(t, err)
	site := string(b)
	// The body limit is the app's: the attachment limit plus its 64 KiB of
	// multipart framing (httpapi/attachments.go multipartSlack).
	cfg, err := config.Load(map[string]string{})
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^\s*client_max_body_size (\d+)k;`).FindStringSubmatch(site)
	require.NotNil(t, m)
	kib, _ := strconv.ParseInt(m[1], 10, 64)
	require.Equal(t, cfg.AttachmentMaxBytes+64<<10, kib<<10, "client_max_body_size")
	require.Contains(t, site, fmt.Sprintf(`"max_bytes":%d`, cfg.AttachmentMaxBytes))
	// The headers the app sets itself are not added a second time.
	for _, h := range []string{"X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options", "Content-Security-Policy"} {
		require.NotRegexp(t, `(?i)add_header\s+`+h, site)
	}
	// The stream's location: unbuffered, uncompressed, long read timeout.
	loc := regexp.MustCompile(`(?s)location = /api/v1/stream \{(.*?)\n    \}`).FindStringSubmatch(site)
	require.NotNil(t, loc)
	for _, d := range []string{"proxy_buffering off;", "gzip off;", "proxy_read_timeout 1h;", "proxy_pass_header X-Accel-Buffering;"} {
		require.Contains(t, loc[1], d)
	}
	require.NotContains(t, loc[1], "proxy_set_header", "a proxy_set_header here would drop the server's (X-Forwarded-For…)")
	require.NotContains(t, regexp.MustCompile(`(?m)^\s*gzip_types[^;]*;`).FindString(site), "event-stream")
}

// --- Kubernetes -------------------------------------------------------------------

type k8sDoc struct {
	file string
	m    map[string]any
}

func (d k8sDoc) kind() string { return str(d.m["kind"]) }
func (d k8sDoc) name() string { return str(dig(d.m, "metadata", "name")) }

func str(v any) string { s, _ := v.(string); return s }

// dig walks maps by key.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func list(v any) []any { l, _ := v.([]any); return l }

func strMap(v any) map[string]string {
	out := map[string]string{}
	m, _ := v.(map[string]any)
	for k, x := range m {
		out[k] = str(x)
	}
	return out
}

func loadManifests(t *testing.T) []k8sDoc {
	var docs []k8sDoc
	root := deployDir("kubernetes")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		dec := yaml.NewDecoder(f)
		for {
			var m map[string]any
			if err := dec.Decode(&m); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if m != nil {
				rel, _ := filepath.Rel(root, path)
				docs = append(docs, k8sDoc{file: rel, m: m})
			}
		}
	})
	require.NoError(t, err)
	return docs
}

func TestKubernetesManifests(t *testing.T) {
	docs := loadManifests(t)
	byKind := map[string]map[string]k8sDoc{}
	for _, d := range docs {
		where := d.file + " " + d.kind() + "/" + d.name()
		require.NotEmpty(t, str(d.m["apiVersion"]), where)
		require.NotEmpty(t, d.kind(), where)
		require.NotEmpty(t, d.name(), where)
		if d.kind() != "Namespace" {
			require.Equal(t, "atumdesk", dig(d.m, "metadata", "namespace"), where)
		}
		if byKind[d.kind()] == nil {
			byKind[d.kind()] = map[string]k8sDoc{}
		}
		_, dup := byKind[d.kind()][d.name()]
		require.False(t, dup, "%s defined twice", where)
		byKind[d.kind()][d.name()] = d
	}
	cm, ok := byKind["ConfigMap"]["atumdesk-config"]
	require.True(t, ok)
	secret, ok := byKind["Secret"]["atumdesk-secrets"]
	require.True(t, ok)
	shared := strMap(dig(cm.m, "data"))
	maps.Copy(shared, strMap(dig(secret.m, "stringData")))
	checkEnv(t, "ConfigMap+Secret", shared)

	var image string
	podSpecs := map[string]any{} // "Kind/name" → pod spec
	for _, d := range byKind["Deployment"] {
		podSpecs["Deployment/"+d.name()] = dig(d.m, "spec", "template", "spec")
		// The selector picks the template's pods.
		sel := strMap(dig(d.m, "spec", "selector", "matchLabels"))
		labels := strMap(dig(d.m, "spec", "template", "metadata", "labels"))
		require.NotEmpty(t, sel, d.name())
		for k, v := range sel {
			require.Equal(t, v, labels[k], "%s: selector %s", d.name(), k)
		}
		// A PodDisruptionBudget covers it.
		covered := false
		for _, p := range byKind["PodDisruptionBudget"] {
			if maps.Equal(strMap(dig(p.m, "spec", "selector", "matchLabels")), sel) {
				covered = true
			}
		}
		require.True(t, covered, "%s has no PodDisruptionBudget", d.name())
	}
	for _, d := range byKind["Job"] {
		podSpecs["Job/"+d.name()] = dig(d.m, "spec", "template", "spec")
	}
	roles := map[string][]string{} // Deployment name → its args
	for where, spec := range podSpecs {
		require.Equal(t, true, dig(spec, "securityContext", "runAsNonRoot"), where)
		require.Equal(t, "atumdesk", dig(spec, "serviceAccountName"), where)
		containers := list(dig(spec, "containers"))
		require.Len(t, containers, 1, where)
		c := containers[0]
		if image == "" {
			image = str(dig(c, "image"))
		}
		require.Equal(t, image, dig(c, "image"), "%s: one image for every role", where)
		require.Equal(t, []any{deployBinary}, dig(c, "command"), where)
		var args []string
		for _, a := range list(dig(c, "args")) {
			args = append(args, str(a))
		}
		checkCommand(t, where, args)
		roles[strings.TrimPrefix(where, "Deployment/")] = args
		for _, r := range []string{"cpu", "memory"} {
			require.NotNil(t, dig(c, "resources", "requests", r), "%s: resources.requests.%s", where, r)
		}
		require.NotNil(t, dig(c, "resources", "limits", "memory"), where)
		require.Equal(t, false, dig(c, "securityContext", "allowPrivilegeEscalation"), where)
		require.Equal(t, true, dig(c, "securityContext", "readOnlyRootFilesystem"), where)

		// envFrom names what exists; env names what config declares.
		env := maps.Clone(shared)
		for _, ef := range list(dig(c, "envFrom")) {
			if n := str(dig(ef, "configMapRef", "name")); n != "" {
				require.Contains(t, byKind["ConfigMap"], n, where)
			}
			if n := str(dig(ef, "secretRef", "name")); n != "" {
				require.Contains(t, byKind["Secret"], n, where)
			}
		}
		for _, e := range list(dig(c, "env")) {
			env[str(dig(e, "name"))] = str(dig(e, "value"))
		}
		checkEnv(t, where, env)

		// Probes reach a declared port; the role listens on it.
		ports := map[string]int{}
		for _, p := range list(dig(c, "ports")) {
			ports[str(dig(p, "name"))] = dig(p, "containerPort").(int)
		}
		probe := func(kind, path string) {
			require.Equal(t, path, dig(c, kind, "httpGet", "path"), "%s: %s", where, kind)
			port, ok := ports[str(dig(c, kind, "httpGet", "port"))]
			require.True(t, ok, "%s: %s port is not a container port", where, kind)
			addr := env["ATUMDESK_METRICS_ADDR"]
			if args[0] == "api" {
				addr = env["ATUMDESK_HTTP_ADDR"]
			}
			_, p, err := net.SplitHostPort(addr)
			require.NoError(t, err, where)
			require.Equal(t, strconv.Itoa(port), p, "%s: %s probes a port the role does not listen on", where, kind)
		}
		switch args[0] {
		case "api":
			probe("readinessProbe", "/readyz")
			probe("livenessProbe", "/healthz")
		case "pipeline", "worker", "imap":
			probe("livenessProbe", "/healthz")
		}
	}
	require.NotEmpty(t, image)

	// Services select the api pods; the Ingresses reach a Service port.
	for _, s := range byKind["Service"] {
		sel := strMap(dig(s.m, "spec", "selector"))
		dep, ok := byKind["Deployment"][s.name()]
		require.True(t, ok, "Service %s has no Deployment of its name", s.name())
		labels := strMap(dig(dep.m, "spec", "template", "metadata", "labels"))
		for k, v := range sel {
			require.Equal(t, v, labels[k], "Service %s selector", s.name())
		}
	}
	var streamIngress bool
	for _, ing := range byKind["Ingress"] {
		for _, rule := range list(dig(ing.m, "spec", "rules")) {
			for _, p := range list(dig(rule, "http", "paths")) {
				svc := str(dig(p, "backend", "service", "name"))
				require.Contains(t, byKind["Service"], svc, ing.name())
				port := str(dig(p, "backend", "service", "port", "name"))
				var names []string
				for _, sp := range list(dig(byKind["Service"][svc].m, "spec", "ports")) {
					names = append(names, str(dig(sp, "name")))
				}
				require.Contains(t, names, port, ing.name())
				ann := strMap(dig(ing.m, "metadata", "annotations"))
				switch str(dig(p, "path")) {
				case "/api/v1/stream":
					streamIngress = true
					require.Equal(t, "off", ann["nginx.ingress.kubernetes.io/proxy-buffering"])
					require.Equal(t, "3600", ann["nginx.ingress.kubernetes.io/proxy-read-timeout"])
				case "/metrics", "/readyz":
					require.Equal(t, "0.0.0.0/0,::/0", ann["nginx.ingress.kubernetes.io/denylist-source-range"], "%s is public", dig(p, "path"))
				case "/":
					require.Equal(t, strconv.FormatInt((52428800+64<<10)>>10, 10)+"k", ann["nginx.ingress.kubernetes.io/proxy-body-size"])
				}
			}
		}
	}
	require.True(t, streamIngress, "no Ingress for /api/v1/stream")

	// One worker Deployment per queue, each with a ScaledObject and an HPA on
	// that queue's depth.
	for _, q := range pipeline.Queues {
		name := "atumdesk-worker-" + q
		args, ok := roles[name]
		require.True(t, ok, "no Deployment %s", name)
		spec, err := workers.ParseQueues(args[2])
		require.NoError(t, err)
		require.Equal(t, []string{q}, slices.Collect(maps.Keys(spec)), name)

		so, ok := byKind["ScaledObject"][name]
		require.True(t, ok, "no ScaledObject %s", name)
		require.Equal(t, name, dig(so.m, "spec", "scaleTargetRef", "name"))
		require.GreaterOrEqual(t, dig(so.m, "spec", "minReplicaCount"), 1, "the depth gauge needs a worker")
		var queries []string
		for _, tr := range list(dig(so.m, "spec", "triggers")) {
			require.Equal(t, "prometheus", dig(tr, "type"))
			queries = append(queries, str(dig(tr, "metadata", "query")))
		}
		require.Contains(t, queries, fmt.Sprintf(`max(atumdesk_queue_tasks{queue=%q,state="pending"})`, q))

		hpa, ok := byKind["HorizontalPodAutoscaler"][name]
		require.True(t, ok, "no HorizontalPodAutoscaler %s", name)
		require.Equal(t, name, dig(hpa.m, "spec", "scaleTargetRef", "name"))
		ext := dig(list(dig(hpa.m, "spec", "metrics"))[0], "external")
		require.Equal(t, "atumdesk_queue_tasks", dig(ext, "metric", "name"))
		require.Equal(t, map[string]string{"queue": q, "state": "pending"}, strMap(dig(ext, "metric", "selector", "matchLabels")))
		require.Equal(t, "AverageValue", dig(ext, "target", "type"))
	}
	job, ok := byKind["Job"]["atumdesk-migrate"]
	require.True(t, ok)
	require.Equal(t, []any{"migrate", "up"}, dig(list(dig(job.m, "spec", "template", "spec", "containers"))[0], "args"))
	for _, name := range []string{"atumdesk-api", "atumdesk-pipeline", "atumdesk-imap"} {
		require.Contains(t, roles, name)
	}
}
