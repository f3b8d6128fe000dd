// Package docs checks the operator documentation against the real thing: every shell block of
// docs/operations.md marked `sh run` is run, in order, against a real cdpd hosting
// deploy/examples on a fixture datastore and a real `flowctl server`; blocks marked
// `sh platform` (systemctl, kubectl, docker compose) are syntax-checked and their cdpd/flowctl
// flags, cdpd endpoints, metric names and state paths are checked against the code and the
// running daemon. `make docs-check` runs it.
package docs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/withobsrvr/cdpd/deploy/refs"
	"github.com/withobsrvr/cdpd/test/fixture"
	"github.com/withobsrvr/cdpd/test/testproc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// block is one fenced code block of the runbook.
type block struct {
	Line     int
	Lang     string
	Kind     string // run, platform, env ("" for non-shell blocks)
	WantExit int
	Text     string
}

var fence = regexp.MustCompile("^```(\\S*)\\s*(.*)$")

func parseBlocks(md string) ([]block, error) {
	var out []block
	var cur *block
	var body strings.Builder
	sc := bufio.NewScanner(strings.NewReader(md))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if cur == nil {
			m := fence.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			cur = &block{Line: n, Lang: m[1]}
			for _, attr := range strings.Fields(m[2]) {
				switch {
				case attr == "run" || attr == "platform" || attr == "env":
					cur.Kind = attr
				case strings.HasPrefix(attr, "exit="):
					v, err := strconv.Atoi(strings.TrimPrefix(attr, "exit="))
					if err != nil {
						return nil, fmt.Errorf("line %d: %q: %w", n, attr, err)
					}
					cur.WantExit = v
				default:
					return nil, fmt.Errorf("line %d: unknown block attribute %q", n, attr)
				}
			}
			body.Reset()
			continue
		}
		if strings.HasPrefix(line, "```") {
			cur.Text = body.String()
			out = append(out, *cur)
			cur = nil
			continue
		}
		body.WriteString(line)
		body.WriteByte('\n')
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: code block not closed", cur.Line)
	}
	return out, nil
}

func TestParseBlocks(t *testing.T) {
	md := "x\n```sh run exit=1\ncdpd validate x\n```\n```text\nout\n```\n```sh platform\nsystemctl stop cdpd\n```\n"
	bs, err := parseBlocks(md)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 3 || bs[0].Kind != "run" || bs[0].WantExit != 1 || bs[0].Text != "cdpd validate x\n" ||
		bs[1].Lang != "text" || bs[2].Kind != "platform" || bs[0].Line != 2 {
		t.Fatalf("parseBlocks = %+v", bs)
	}
	if _, err := parseBlocks("```sh runn\nx\n```\n"); err == nil {
		t.Fatal("an unknown attribute must be an error")
	}
}

// env of the runbook (the `sh env` block may name only these).
const (
	envURL      = "CDPD_URL"
	envConfig   = "CDPD_CONFIG_DIR"
	envEndpoint = "FLOWCTL_ENDPOINT"
)

type rig struct {
	root, bin, conf, state, out, ds string
	httpAddr, cpAddr                string
	cdpd, cp                        *testproc.Proc
}

func TestRunbook(t *testing.T) {
	strict := os.Getenv("CDPD_DOCS_CHECK") == "1"
	for _, tool := range []string{"bash", "curl", "jq", "timeout", "grep"} {
		if _, err := exec.LookPath(tool); err != nil {
			if strict {
				t.Fatalf("the runbook needs %s (see .ci/run)", tool)
			}
			t.Skipf("%s not installed: the runbook's commands cannot run (make docs-check fails instead of skipping)", tool)
		}
	}
	root, err := refs.ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseBlocks(string(md))
	if err != nil {
		t.Fatalf("docs/operations.md: %v", err)
	}
	ck := newChecker(t, root)
	ck.checkMetricNames(string(md))
	ck.checkAlertNames(string(md))

	r := startRig(t, root)
	ck.routesLive = func(method, path string) int { return r.status(method, path) }
	provided := map[string]string{
		envURL: "http://" + r.httpAddr, envConfig: r.conf, envEndpoint: r.cpAddr,
		"CDP_DATASTORE": r.ds, "CDP_OUT": r.out,
	}
	ran, static := 0, 0
	for _, b := range blocks {
		if b.Lang != "sh" {
			if b.Kind != "" {
				t.Errorf("docs/operations.md:%d: %q block marked %s: only sh blocks run", b.Line, b.Lang, b.Kind)
			}
			continue
		}
		where := fmt.Sprintf("docs/operations.md:%d", b.Line)
		switch b.Kind {
		case "env":
			for _, m := range regexp.MustCompile(`(?m)^export (\w+)=`).FindAllStringSubmatch(b.Text, -1) {
				if _, ok := provided[m[1]]; !ok {
					t.Errorf("%s: the env block sets %s, which the docs check does not provide", where, m[1])
				}
			}
			continue
		case "run":
			ck.checkCommands(where, b.Text)
			r.runBlock(t, where, b, provided)
			ran++
		case "platform":
			ck.checkCommands(where, b.Text)
			if out, err := exec.Command("bash", "-n", "-c", b.Text).CombinedOutput(); err != nil {
				t.Errorf("%s: shell syntax: %v\n%s", where, err, out)
			}
			static++
		default:
			t.Errorf("%s: sh block without `run`, `platform` or `env`: every command of the runbook must be run or checked", where)
		}
	}
	t.Logf("runbook: %d blocks run, %d platform blocks checked statically", ran, static)

	// The code's metrics the static extractor knows are all the daemon actually serves.
	ck.checkLiveMetrics(r.get(t, "/metrics"))

	// Shutdown as the runbook describes it: SIGTERM drains, unregisters, exits 0 and leaves the
	// checkpoints the platform blocks refer to.
	code, err := r.cdpd.Stop(45 * time.Second)
	if err != nil || code != 0 {
		t.Errorf("cdpd after SIGTERM: exit %d, %v\n%s", code, err, testproc.Tail(r.cdpd.Output(), 3000))
	}
	if out, err := r.flowctl("list"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("after cdpd stopped, the control plane still lists services (%v):\n%s", err, out)
	}
	for _, p := range ck.statePaths {
		if _, err := os.Stat(filepath.Join(r.state, p)); err != nil {
			t.Errorf("the runbook refers to /var/lib/cdpd/%s; a real cdpd state dir has no such file: %v", p, err)
		}
	}
}

func startRig(t *testing.T, root string) *rig {
	t.Helper()
	tmp := t.TempDir()
	r := &rig{root: root, bin: filepath.Join(tmp, "bin"), conf: filepath.Join(tmp, "conf"),
		state: filepath.Join(tmp, "state"), out: filepath.Join(tmp, "out"), ds: filepath.Join(tmp, "datastore")}
	if _, err := testproc.Build(r.bin, testproc.BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := fixture.Build(r.ds, fixture.Options{Count: 30}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(r.conf, 0o755); err != nil {
		t.Fatal(err)
	}
	examples, _ := filepath.Glob(filepath.Join(root, "deploy", "examples", "*.yaml"))
	for _, f := range examples {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(r.conf, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cpPort := testproc.FreePort(t)
	r.cpAddr = "127.0.0.1:" + strconv.Itoa(cpPort)
	r.cp = start(t, "flowctl-server", nil, filepath.Join(r.bin, "flowctl"), "server", "--address", "127.0.0.1",
		"--port", strconv.Itoa(cpPort), "--no-persistence", "--heartbeat-ttl", "10s", "--janitor-interval", "1s")
	testproc.WaitTCP(t, 20*time.Second, "control plane listening", r.cpAddr)
	r.httpAddr = "127.0.0.1:" + strconv.Itoa(testproc.FreePort(t))
	r.cdpd = start(t, "cdpd", []string{
		"FLOWCTL_ENDPOINT=" + r.cpAddr, "CDPD_HTTP_ADDR=" + r.httpAddr, "CDPD_CONFIG_DIR=" + r.conf,
		"CDPD_STATE_DIR=" + r.state, "CDPD_HEARTBEAT_INTERVAL=1s", "CDPD_DRAIN_TIMEOUT=10s", "CDPD_PPROF=true",
		"CDP_DATASTORE=" + r.ds, "CDP_OUT=" + r.out,
	}, filepath.Join(r.bin, "cdpd"))
	testproc.Eventually(t, 30*time.Second, "cdpd ready with every example pipeline registered", func() (bool, string) {
		if c := r.status("GET", "/readyz"); c != 200 {
			return false, fmt.Sprintf("/readyz %d", c)
		}
		var ps []struct {
			Name       string `json:"name"`
			Registered bool   `json:"registered"`
		}
		if err := json.Unmarshal([]byte(r.get(t, "/api/v1/pipelines")), &ps); err != nil {
			return false, err.Error()
		}
		if len(ps) != len(examples) {
			return false, fmt.Sprintf("%d pipelines", len(ps))
		}
		for _, p := range ps {
			if !p.Registered {
				return false, p.Name + " not registered"
			}
		}
		return true, ""
	})
	return r
}

func (r *rig) status(method, path string) int {
	req, _ := http.NewRequest(method, "http://"+r.httpAddr+path, nil)
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (r *rig) get(t *testing.T, path string) string {
	t.Helper()
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + r.httpAddr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (r *rig) flowctl(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(r.bin, "flowctl"), append(args, "--control-plane-addr", r.cpAddr)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runBlock runs one `sh run` block with bash -euo pipefail and the runbook's environment.
func (r *rig) runBlock(t *testing.T, where string, b block, provided map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", b.Text)
	cmd.Dir = t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "CDPD_") || strings.HasPrefix(k, "FLOWCTL_") || strings.HasPrefix(k, "CDP_") || k == "PATH" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "PATH="+r.bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	for k, v := range provided {
		env = append(env, k+"="+v)
	}
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok || ctx.Err() != nil {
			t.Errorf("%s: %v (after %s)\n%s\n--- output ---\n%s", where, err, time.Since(start).Round(time.Millisecond), b.Text, out.String())
			return
		}
		code = ee.ExitCode()
	}
	if code != b.WantExit {
		t.Errorf("%s: exit %d, want %d\n%s\n--- output ---\n%s\n--- cdpd (last 2 KiB) ---\n%s", where, code, b.WantExit, b.Text, out.String(), testproc.Tail(r.cdpd.Output(), 2048))
		return
	}
	t.Logf("%s: exit %d in %s", where, code, time.Since(start).Round(time.Millisecond))
}

// checker checks the commands, metric names and paths of the runbook against the code.
type checker struct {
	t          *testing.T
	cdpd       refs.CDPD
	flowctl    map[string]map[string]bool // "status", "alert create" -> flags
	cdpdCmds   map[string]map[string]bool // "validate", "shards" -> flags
	routes     []refs.Route
	metrics    map[string]bool
	routesLive func(method, path string) int
	statePaths []string // paths under /var/lib/cdpd the runbook names
	rulesText  string
}

func newChecker(t *testing.T, root string) *checker {
	c := &checker{t: t, flowctl: map[string]map[string]bool{}}
	var err error
	if c.cdpd, err = refs.CDPDUsage(); err != nil {
		t.Fatal(err)
	}
	for cmd, subs := range refs.FlowctlCommands {
		if len(subs) == 0 {
			if c.flowctl[cmd], err = refs.FlowctlFlags(cmd); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range subs {
			if c.flowctl[cmd+" "+s], err = refs.FlowctlFlags(cmd, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.cdpdCmds = map[string]map[string]bool{}
	for _, cmd := range refs.CDPDCommands {
		if c.cdpdCmds[cmd], err = refs.CDPDCommandFlags(cmd); err != nil {
			t.Fatal(err)
		}
	}
	if c.routes, err = refs.Routes(root); err != nil {
		t.Fatal(err)
	}
	ms, err := refs.Metrics(root)
	if err != nil {
		t.Fatal(err)
	}
	c.metrics = refs.SeriesNames(ms)
	fleet, err := refs.FleetMetrics(root) // the control plane's re-export of heartbeat metrics
	if err != nil {
		t.Fatal(err)
	}
	for n := range fleet {
		c.metrics[n] = true
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	c.rulesText = string(b)
	return c
}

var metricToken = regexp.MustCompile(`\b(?:cdp_pipeline|cdpd|cdp_control)_[a-z0-9_]*[a-z0-9]\b`)

// checkMetricNames: every metric name the runbook mentions is one the code exports.
func (c *checker) checkMetricNames(md string) {
	for _, m := range metricToken.FindAllString(md, -1) {
		if !c.metrics[m] && !strings.HasSuffix(m, "_") {
			// grep alternations like cdp_pipeline_(a|b) leave a prefix: accept prefixes of real names
			prefix := false
			for k := range c.metrics {
				prefix = prefix || strings.HasPrefix(k, m+"_")
			}
			if !prefix {
				c.t.Errorf("docs/operations.md mentions %s, which the code does not export", m)
			}
		}
	}
}

// checkAlertNames: every alert named in the runbook is in rules.yml.
func (c *checker) checkAlertNames(md string) {
	for _, m := range regexp.MustCompile("`((?:CDPD?|Flowctl)[A-Z][A-Za-z]+)`").FindAllStringSubmatch(md, -1) {
		if !strings.Contains(c.rulesText, "alert: "+m[1]+"\n") {
			c.t.Errorf("docs/operations.md names alert %s, which deploy/prometheus/rules.yml does not define", m[1])
		}
	}
}

// checkLiveMetrics: the static extraction (used for rules and dashboards) covers every
// cdp/cdpd family a real daemon serves, except the SDK's own source metrics.
func (c *checker) checkLiveMetrics(scrape string) {
	for _, line := range strings.Split(scrape, "\n") {
		if !strings.HasPrefix(line, "# TYPE ") {
			continue
		}
		name := strings.Fields(line)[2]
		if !metricToken.MatchString(name) || strings.HasPrefix(name, "cdp_pipeline_source_ingest_") {
			continue
		}
		if !c.metrics[name] {
			c.t.Errorf("cdpd serves %s, which refs.Metrics did not find in the code", name)
		}
	}
}

// checkCommands checks each cdpd, flowctl and curl invocation of a block, and collects the
// state paths it names.
func (c *checker) checkCommands(where, text string) {
	text = strings.ReplaceAll(text, "\\\n", " ")
	// Heredoc bodies are file contents, not commands.
	lines := strings.Split(text, "\n")
	var cmds []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		cmds = append(cmds, l)
		if m := regexp.MustCompile(`<<-?'?(\w+)'?`).FindStringSubmatch(l); m != nil {
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != m[1]; i++ {
			}
		}
	}
	for _, l := range cmds {
		if i := strings.Index(l, " #"); i >= 0 && !strings.Contains(l[:i], "'") {
			l = l[:i]
		}
		for _, p := range regexp.MustCompile(`/var/lib/cdpd/(\S+)`).FindAllStringSubmatch(l, -1) {
			c.statePaths = append(c.statePaths, p[1])
		}
		c.checkLine(where, l)
	}
}

func (c *checker) checkLine(where, line string) {
	words := shellWords(line)
	var seg []string
	flush := func() {
		if len(seg) > 0 {
			c.checkCommand(where, seg)
		}
		seg = nil
	}
	for _, w := range words {
		switch w.text {
		case "|", "||", "&&", ";":
			if !w.quoted {
				flush()
				continue
			}
		}
		seg = append(seg, w.text)
	}
	flush()
}

func (c *checker) checkCommand(where string, args []string) {
	if len(args) == 0 {
		return
	}
	name := args[0]
	switch {
	case name == "timeout" && len(args) > 2:
		c.checkCommand(where, args[2:])
	case (name == "sh" || name == "bash") && len(args) > 2 && args[1] == "-c":
		c.checkLine(where, args[2])
	case name == "until" || name == "while" || name == "do" || name == "!" || name == "then":
		c.checkCommand(where, args[1:])
	case name == "cdpd":
		known, what, rest := c.cdpd.Flags, "cdpd", args[1:]
		if len(args) > 1 && c.cdpdCmds[args[1]] != nil {
			known, what, rest = c.cdpdCmds[args[1]], "cdpd "+args[1], args[2:]
		}
		for _, a := range rest {
			if strings.HasPrefix(a, "-") {
				f := strings.SplitN(strings.TrimLeft(a, "-"), "=", 2)[0]
				if !known[f] {
					c.t.Errorf("%s: %s has no flag --%s", where, what, f)
				}
			}
		}
	case name == "flowctl":
		if len(args) < 2 {
			return
		}
		key := args[1]
		if subs := refs.FlowctlCommands[args[1]]; len(subs) > 0 && len(args) > 2 {
			key += " " + args[2]
		}
		known, ok := c.flowctl[key]
		if !ok {
			c.t.Errorf("%s: flowctl has no command %q", where, key)
			return
		}
		for _, a := range args[2:] {
			if strings.HasPrefix(a, "-") && a != "-" {
				f := strings.SplitN(strings.TrimLeft(a, "-"), "=", 2)[0]
				if !known[f] {
					c.t.Errorf("%s: flowctl %s has no flag --%s", where, key, f)
				}
			}
		}
	case name == "curl":
		method := "GET"
		for i, a := range args {
			if a == "-X" && i+1 < len(args) {
				method = args[i+1]
			}
		}
		for _, a := range args {
			if !strings.HasPrefix(a, "$"+envURL) {
				continue
			}
			path := strings.TrimPrefix(a, "$"+envURL)
			found := false
			for _, r := range c.routes {
				found = found || r.Match(method, path)
			}
			if !found {
				c.t.Errorf("%s: %s %s is not a route of cdpd (daemon/api.go)", where, method, path)
			}
			if c.routesLive != nil && !strings.Contains(path, "token-transfers") {
				if code := c.routesLive(method, path); code == 0 || code == 404 || code == 405 {
					c.t.Errorf("%s: %s %s answered %d on a real cdpd", where, method, path, code)
				}
			}
		}
	}
}

type word struct {
	text   string
	quoted bool
}

// shellWords splits a command line into words: quotes removed (their content kept as one
// word), operators | || && ; as their own words.
func shellWords(s string) []word {
	var out []word
	var cur strings.Builder
	inWord, quoted := false, false
	emit := func() {
		if inWord {
			out = append(out, word{cur.String(), quoted})
		}
		cur.Reset()
		inWord, quoted = false, false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\'' || ch == '"':
			j := strings.IndexByte(s[i+1:], ch)
			if j < 0 {
				j = len(s) - i - 1
			}
			cur.WriteString(s[i+1 : i+1+j])
			inWord, quoted = true, true
			i += j + 1
		case ch == ' ' || ch == '\t':
			emit()
		case ch == '|' || ch == '&' || ch == ';':
			emit()
			op := string(ch)
			if i+1 < len(s) && (s[i+1] == '|' || s[i+1] == '&') && ch != ';' {
				op += string(s[i+1])
				i++
			}
			out = append(out, word{text: op})
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	emit()
	return out
}

func TestShellWords(t *testing.T) {
	got := shellWords(`timeout 30 sh -c 'until flowctl health x; do sleep 1; done' | jq -r ".a" && curl -X POST "$CDPD_URL/api/v1/reload"`)
	var texts []string
	for _, w := range got {
		texts = append(texts, w.text)
	}
	want := []string{"timeout", "30", "sh", "-c", "until flowctl health x; do sleep 1; done", "|", "jq", "-r", ".a", "&&", "curl", "-X", "POST", "$CDPD_URL/api/v1/reload"}
	if strings.Join(texts, "\x00") != strings.Join(want, "\x00") {
		t.Fatalf("shellWords = %q", texts)
	}
}

// start starts a binary with the runbook's own variables (CDPD_*, FLOWCTL_*, CDP_*) removed
// from the test's environment, so that only env sets them.
func start(t *testing.T, name string, env []string, bin string, args ...string) *testproc.Proc {
	t.Helper()
	return testproc.Cmd{Name: name, Bin: bin, Args: args, Env: env,
		DropEnvPrefixes: []string{"CDPD_", "FLOWCTL_", "CDP_"}}.Start(t)
}
