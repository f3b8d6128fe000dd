package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/withobsrvr/cdpd/deploy/refs"
)

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "deploy", "prometheus", "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("rules.yml: %v", err)
	}
	return rf
}

// runbookAnchors are the heading anchors of docs/operations.md, as GitHub makes them.
func runbookAnchors(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var sb strings.Builder
		for _, r := range h {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
				sb.WriteRune(r)
			case r == ' ':
				sb.WriteRune('-')
			}
		}
		out[sb.String()] = true
	}
	return out
}

var docLink = regexp.MustCompile(`docs/operations\.md#([a-z0-9_-]+)`)

func TestPrometheusRules(t *testing.T) {
	rf := loadRules(t)
	known := exported(t)
	anchors := runbookAnchors(t)
	recorded := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
		}
	}
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			name := r.Record + r.Alert
			if (r.Record == "") == (r.Alert == "") {
				t.Errorf("group %s: a rule must be a record or an alert: %+v", g.Name, r)
			}
			names := refs.PromQLMetrics(r.Expr)
			if len(names) == 0 {
				t.Errorf("%s: expression selects no metric: %s", name, r.Expr)
			}
			for _, m := range names {
				if !known[m] && !recorded[m] {
					t.Errorf("%s: %s is neither exported by the code nor recorded here", name, m)
				}
			}
			if r.Alert == "" {
				continue
			}
			alerts[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("alert %s: severity %q", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: summary and description annotations are required", r.Alert)
			}
			links := docLink.FindAllStringSubmatch(r.Annotations["description"], -1)
			if len(links) == 0 {
				t.Errorf("alert %s: the description links no section of docs/operations.md", r.Alert)
			}
			for _, l := range links {
				if !anchors[l[1]] {
					t.Errorf("alert %s links docs/operations.md#%s, which has no such heading", r.Alert, l[1])
				}
			}
		}
	}
	for _, want := range []string{"CDPPipelineStalled", "CDPPipelineRestarting", "CDPDControlPlaneRegistrationLost"} {
		if !alerts[want] {
			t.Errorf("rules.yml has no alert %s", want)
		}
	}

	t.Run("promtool", func(t *testing.T) {
		pt := promtool(t)
		dir := filepath.Join(root(t), "deploy", "prometheus")
		if out, err := run(t, dir, pt, "check", "rules", "rules.yml"); err != nil {
			t.Errorf("promtool check rules: %v\n%s", err, out)
		}
		if out, err := run(t, dir, pt, "test", "rules", "rules_test.yml"); err != nil {
			t.Errorf("promtool test rules: %v\n%s", err, out)
		}
		if out, err := run(t, dir, pt, "check", "config", "prometheus.yml"); err != nil {
			t.Errorf("promtool check config prometheus.yml: %v\n%s", err, out)
		}
		out, err := run(t, dir, pt, "check", "config", "prometheus-kubernetes.yml")
		switch {
		case err != nil && strings.Contains(out, "field kubernetes_sd_configs not found"):
			// Debian's promtool is built without the Kubernetes service discovery.
			t.Log("this promtool has no Kubernetes service discovery: prometheus-kubernetes.yml checked as YAML only")
			yamlDocs(t, filepath.Join(dir, "prometheus-kubernetes.yml"))
		case err != nil:
			t.Errorf("promtool check config prometheus-kubernetes.yml: %v\n%s", err, out)
		}
	})
}

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func TestGrafanaDashboard(t *testing.T) {
	// What the issues ask each dashboard to show.
	for file, want := range map[string][]string{
		"cdpd.json":  {"Ledgers per second", "Ledger lag", "Restarts", "Consumer errors", "Heartbeats", "Registered pipelines"},
		"fleet.json": {"Pipelines per instance", "Ledgers behind per pipeline", "Unhealthy services", "Backfill progress", "Shards reporting"},
	} {
		t.Run(file, func(t *testing.T) { testDashboard(t, file, want) })
	}
	// Every dashboard is provisioned in docker-compose.
	compose, err := os.ReadFile(filepath.Join(root(t), "deploy", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root(t), "deploy", "grafana", "*.json"))
	for _, f := range files {
		if !strings.Contains(string(compose), "./grafana/"+filepath.Base(f)+":/var/lib/grafana/dashboards/") {
			t.Errorf("docker-compose.yml does not mount grafana/%s into Grafana's dashboards", filepath.Base(f))
		}
	}
}

func testDashboard(t *testing.T, file string, wantTitles []string) {
	b, err := os.ReadFile(filepath.Join(root(t), "deploy", "grafana", file))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	known := exported(t)
	vars := map[string]bool{"__rate_interval": true, "__interval": true, "__range": true}
	var exprs []string
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Definition != "" {
			exprs = append(exprs, strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(v.Definition, ", ", 2)[0], "label_values("), ")"))
		}
	}
	var all []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	ids := map[int]bool{}
	titles := map[string]bool{}
	for _, p := range all {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		titles[p.Title] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
			names := refs.PromQLMetrics(tg.Expr)
			if len(names) == 0 {
				t.Errorf("panel %q: query selects no metric: %s", p.Title, tg.Expr)
			}
			for _, m := range names {
				if !known[m] {
					t.Errorf("panel %q: %s is not exported by the code", p.Title, m)
				}
			}
			for _, v := range regexp.MustCompile(`\$\{?(\w+)`).FindAllStringSubmatch(tg.Expr, -1) {
				if !vars[v[1]] {
					t.Errorf("panel %q uses $%s, which is not a dashboard variable", p.Title, v[1])
				}
			}
		}
	}
	for _, want := range wantTitles {
		if !titles[want] {
			t.Errorf("dashboard has no panel %q", want)
		}
	}

	t.Run("promtool", func(t *testing.T) {
		// Every query must parse: check them as recording rules, Grafana variables replaced.
		pt := promtool(t)
		repl := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
			"$instance", ".*", "$pipeline", ".*", "${datasource}", "", "$datasource", "")
		type rule struct {
			Record string `yaml:"record"`
			Expr   string `yaml:"expr"`
		}
		var rules []rule
		for i, e := range exprs {
			rules = append(rules, rule{Record: "dashboard_query_" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), Expr: repl.Replace(e)})
		}
		doc := map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}}
		out, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "dashboard-rules.yml")
		if err := os.WriteFile(f, out, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := run(t, filepath.Dir(f), pt, "check", "rules", f); err != nil {
			t.Errorf("dashboard queries do not parse: %v\n%s", err, out)
		}
	})
}

func TestPromQLMetrics(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{`up{job="cdpd"} == 0`, "up"},
		{`sum by (job, instance) (rate(a_total[5m])) > 0 and sum by (job) (rate(b_total{x="y"}[5m])) == 0`, "a_total b_total"},
		{`changes(x[10m]) == 0 and on (job, pipeline) changes(y[10m]) > 0`, "x y"},
		{`histogram_quantile(0.99, sum by (le) (rate(h_bucket{pipeline=~"$pipeline"}[$__rate_interval])))`, "h_bucket"},
		{`cdp_pipeline:restarts:increase15m >= 3`, "cdp_pipeline:restarts:increase15m"},
		{`a - b offset 5m`, "a b"},
	} {
		if got := strings.Join(refs.PromQLMetrics(c.expr), " "); got != c.want {
			t.Errorf("PromQLMetrics(%q) = %q, want %q", c.expr, got, c.want)
		}
	}
}

func TestMetricsExtraction(t *testing.T) {
	// Metrics the deployment relies on, of every kind the extractor handles: plain names,
	// Namespace + Name with a package constant, histograms, NewDesc.
	known := exported(t)
	for _, m := range []string{
		"cdp_pipeline_current_ledger", "cdp_pipeline_source_tip_ledger",
		"cdp_pipeline_component_latency_seconds_bucket", "cdp_control_services",
		"cdpd_control_registered_pipelines", "cdpd_config_last_reload_successful",
	} {
		if !known[m] {
			t.Errorf("%s not found in the code", m)
		}
	}
}
