// Package dashboards holds what operators watch: the Grafana dashboards
// (grafana/*.json: SLA for managers; pipeline, API and e-mail for SREs) and
// the Prometheus recording and alerting rules (rules/*.yml, loaded by
// deploy/prometheus/prometheus.yml; unit tests in rules/tests).
//
// The files are the artefacts: import the JSON into Grafana (each asks for
// a Prometheus data source through its ${datasource} variable) and point
// Prometheus at the rules. Grafana does not run here; the package's tests
// check the dashboards' structure, run promtool on the rules, have the real
// Prometheus of the local stack parse every query and load the rules, and
// have it scrape the real binary to prove that every metric a dashboard or
// rule names is exposed by the code.
package dashboards

import "embed"

// Files are the dashboards (grafana/<uid>.json) and rule files
// (rules/<name>.yml), for tools that provision them.
//
//go:embed grafana/*.json rules/*.yml
var Files embed.FS
