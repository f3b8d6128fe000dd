package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/withobsrvr/cdpd/control/cli"
	"github.com/withobsrvr/cdpd/daemon"
)

// dockerfile is the parsed deploy/docker/Dockerfile: instructions with continuation lines
// joined, comments dropped.
type instruction struct {
	Op, Args string
	Stage    string // the stage it belongs to ("" before the first FROM)
}

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	stage := ""
	cur := ""
	for _, line := range strings.Split(string(b), "\n") {
		trim := strings.TrimSpace(line)
		if cur == "" && (trim == "" || strings.HasPrefix(trim, "#")) {
			continue
		}
		if strings.HasSuffix(trim, "\\") {
			cur += strings.TrimSuffix(trim, "\\") + " "
			continue
		}
		cur += trim
		op, args, _ := strings.Cut(cur, " ")
		op = strings.ToUpper(op)
		if op == "FROM" {
			f := strings.Fields(args)
			stage = f[0]
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				stage = f[2]
			}
		}
		out = append(out, instruction{Op: op, Args: strings.TrimSpace(args), Stage: stage})
		cur = ""
	}
	return out
}

func TestDockerfile(t *testing.T) {
	r := root(t)
	ins := parseDockerfile(t, filepath.Join(r, "deploy", "docker", "Dockerfile"))
	usage := cdpdUsage(t)

	// The builder uses the module's Go version.
	var goVersion string
	var froms []string
	for _, in := range ins {
		if in.Op == "ARG" && strings.HasPrefix(in.Args, "GO_VERSION=") {
			goVersion = strings.TrimPrefix(in.Args, "GO_VERSION=")
		}
		if in.Op == "FROM" {
			froms = append(froms, in.Args)
		}
	}
	if want := goDirective(t); goVersion != want {
		t.Errorf("ARG GO_VERSION=%s, go.mod says go %s", goVersion, want)
	}
	if len(froms) != 2 || !strings.HasPrefix(froms[0], "golang:${GO_VERSION}") {
		t.Errorf("want a golang:${GO_VERSION} builder stage and a runtime stage, got FROM %q", froms)
	}
	builder := strings.Fields(froms[0])[2]
	runtime := strings.Fields(froms[len(froms)-1])[0]

	// Every build builds a package `make build` builds, under the same name; all but cdpd are static.
	makes := makeBuilds(t)
	buildRe := regexp.MustCompile(`(\S+=\S+ )*go build .*?-o (\S+) (\./\S+)`)
	produced := map[string]bool{}
	built := map[string]string{}    // binary name -> package
	builtOut := map[string]string{} // builder path -> binary name
	for _, in := range ins {
		if in.Op != "RUN" || in.Stage != builder {
			continue
		}
		for _, cmd := range strings.Split(in.Args, "&&") {
			if m := regexp.MustCompile(`mkdir -p (.+)`).FindStringSubmatch(cmd); m != nil {
				for _, d := range strings.Fields(m[1]) {
					produced[d] = true
				}
			}
			if !strings.Contains(cmd, "go build") {
				continue
			}
			m := buildRe.FindStringSubmatch(cmd)
			if m == nil {
				t.Errorf("cannot read the go build command %q", cmd)
				continue
			}
			out, pkg := m[2], m[3]
			// cdpd links DuckDB (cgo: the runtime image has glibc and libstdc++); the rest is static.
			if want := map[bool]string{true: "CGO_ENABLED=1", false: "CGO_ENABLED=0"}[pkg == "./cmd/cdpd"]; !strings.Contains(cmd, want) {
				t.Errorf("%q: %s missing", strings.TrimSpace(cmd), want)
			}
			produced[out] = true
			built[filepath.Base(out)] = pkg
			builtOut[out] = filepath.Base(out)
			if _, err := os.Stat(filepath.Join(r, pkg, "main.go")); err != nil {
				t.Errorf("Dockerfile builds %s, which has no main.go: %v", pkg, err)
			}
			// Both binaries are stamped with the image's version, in the variable each prints
			// (daemon.Version and cli.Version, compile-checked here).
			_, _ = daemon.Version, cli.Version
			wantX := map[string]string{
				"cdpd":    "github.com/withobsrvr/cdpd/daemon.Version",
				"flowctl": "github.com/withobsrvr/cdpd/control/cli.Version",
			}[filepath.Base(out)]
			x := regexp.MustCompile(`-X ([^= ]+)=`).FindStringSubmatch(cmd)
			if x == nil || x[1] != wantX {
				t.Errorf("%s: ldflags -X sets %v, want %s", filepath.Base(out), x, wantX)
			}
		}
	}
	for name, pkg := range makes {
		if built[name] != pkg {
			t.Errorf("make build makes bin/%s from %s; the Dockerfile builds %q from %q", name, pkg, name, built[name])
		}
	}
	if len(built) != len(makes) {
		t.Errorf("Dockerfile builds %v, make build builds %v", built, makes)
	}

	// COPY sources exist: in the build context (repository root) or produced by the builder.
	binDest := map[string]string{} // binary name -> path in the image
	for _, in := range ins {
		if in.Op != "COPY" {
			continue
		}
		f := strings.Fields(in.Args)
		from := ""
		var paths []string
		for _, w := range f {
			switch {
			case strings.HasPrefix(w, "--from="):
				from = strings.TrimPrefix(w, "--from=")
			case strings.HasPrefix(w, "--"):
			default:
				paths = append(paths, w)
			}
		}
		srcs, dst := paths[:len(paths)-1], paths[len(paths)-1]
		for _, s := range srcs {
			if from == "" {
				if _, err := os.Stat(filepath.Join(r, s)); err != nil {
					t.Errorf("COPY %s: not in the build context (the repository root): %v", s, err)
				}
				continue
			}
			if from != builder || !produced[s] {
				t.Errorf("COPY --from=%s %s: the builder stage does not produce it (produced: %v)", from, s, sortedKeys(produced))
			}
			if name, ok := builtOut[s]; ok && in.Stage == runtime {
				binDest[name] = filepath.Join(dst, name)
			}
		}
	}
	for name := range makes {
		if binDest[name] == "" {
			t.Errorf("the runtime image does not contain %s", name)
		}
	}

	// Runtime: non-root, config dir, state volume, HTTP on all interfaces, cdpd entrypoint.
	env := map[string]string{}
	var user, volume, entry string
	var expose []string
	for _, in := range ins {
		if in.Stage != runtime {
			continue
		}
		switch in.Op {
		case "ENV":
			for _, kv := range strings.Fields(in.Args) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		case "USER":
			user = in.Args
		case "VOLUME":
			volume = in.Args
		case "ENTRYPOINT":
			entry = in.Args
		case "EXPOSE":
			expose = append(expose, strings.Fields(in.Args)...)
		}
	}
	for k := range env {
		if strings.HasPrefix(k, "CDPD_") && !usage.Env[k] {
			t.Errorf("ENV %s: cdpd reads no such variable", k)
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("USER %q: the image must run as a non-root user", user)
	}
	if env["CDPD_CONFIG_DIR"] != "/etc/cdp" {
		t.Errorf("CDPD_CONFIG_DIR=%q, want /etc/cdp", env["CDPD_CONFIG_DIR"])
	}
	if env["CDPD_STATE_DIR"] != "/var/lib/cdpd" || !strings.Contains(volume, `"/var/lib/cdpd"`) {
		t.Errorf("CDPD_STATE_DIR=%q and VOLUME %s: want the state volume /var/lib/cdpd", env["CDPD_STATE_DIR"], volume)
	}
	for _, d := range []string{"/etc/cdp", "/var/lib/cdpd"} {
		if !produced["/out"+d] {
			t.Errorf("%s is not created for the runtime image (distroless has no shell)", d)
		}
	}
	if !strings.HasPrefix(env["CDPD_HTTP_ADDR"], "0.0.0.0:") {
		t.Errorf("CDPD_HTTP_ADDR=%q: in a container cdpd must listen on 0.0.0.0 (its default is loopback)", env["CDPD_HTTP_ADDR"])
	} else if p := portOf(t, env["CDPD_HTTP_ADDR"]); !contains(expose, p) {
		t.Errorf("EXPOSE %v does not include cdpd's HTTP port %s", expose, p)
	}
	if !under(env["CDP_OUT"], "/var/lib/cdpd") {
		t.Errorf("CDP_OUT=%q: the example pipelines' output must go to a writable volume", env["CDP_OUT"])
	}
	if entry != `["`+binDest["cdpd"]+`"]` {
		t.Errorf("ENTRYPOINT %s, want [%q]", entry, binDest["cdpd"])
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestCompose(t *testing.T) {
	r := root(t)
	dir := filepath.Join(r, "deploy")
	docs := yamlDocs(t, filepath.Join(dir, "docker-compose.yml"))
	if len(docs) != 1 {
		t.Fatalf("docker-compose.yml: %d documents", len(docs))
	}
	c := docs[0]
	usage := cdpdUsage(t)
	vars := pipelineVars(t)
	services, _ := dig(c, "services").(map[string]any)
	for _, name := range []string{"flowctl", "cdpd", "datastore"} {
		if services[name] == nil {
			t.Fatalf("docker-compose.yml: no service %q", name)
		}
	}
	declaredVolumes, _ := dig(c, "volumes").(map[string]any)

	// Build contexts and Dockerfile exist.
	for name, s := range services {
		b := dig(s, "build")
		if b == nil {
			continue
		}
		ctx := filepath.Join(dir, str(dig(b, "context")))
		if _, err := os.Stat(filepath.Join(ctx, str(dig(b, "dockerfile")))); err != nil {
			t.Errorf("service %s: build %v: %v", name, b, err)
		}
	}

	// mounts returns a service's volume mounts: target -> source (host paths checked).
	mounts := func(name string) map[string]string {
		out := map[string]string{}
		for _, v := range strList(dig(services, name, "volumes")) {
			parts := strings.Split(v, ":")
			src, dst := parts[0], parts[1]
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
					t.Errorf("service %s: mount %s: %v", name, v, err)
				}
			} else if declaredVolumes == nil || !hasKey(declaredVolumes, src) {
				t.Errorf("service %s: named volume %s is not declared", name, src)
			}
			out[dst] = src
		}
		return out
	}

	// The control plane: real `flowctl server` flags; its port is what cdpd dials.
	fl := dig(services, "flowctl")
	if ep := strList(dig(fl, "entrypoint")); len(ep) != 1 || ep[0] != "/usr/local/bin/flowctl" {
		t.Errorf("flowctl entrypoint %v, want [/usr/local/bin/flowctl] (where the Dockerfile puts it)", ep)
	}
	cmd := strList(dig(fl, "command"))
	if len(cmd) == 0 || cmd[0] != "server" {
		t.Fatalf("flowctl command %v: want `server ...`", cmd)
	}
	flags, _ := parseArgs(cmd[1:], map[string]bool{"no-persistence": true})
	checkFlags(t, "compose flowctl server", flags, flowctlFlags(t, "server"))
	cpPort, _ := flagValue(flags, "port")
	if a, _ := flagValue(flags, "address"); a != "0.0.0.0" {
		t.Errorf("flowctl --address=%s: other containers cannot reach it", a)
	}
	db, _ := flagValue(flags, "db-path")
	flMounts := mounts("flowctl")
	if !underAny(db, flMounts) {
		t.Errorf("flowctl --db-path %s is not on a volume (mounts %v)", db, flMounts)
	}
	hc := strList(dig(fl, "healthcheck", "test"))
	if len(hc) < 3 || hc[1] != "/usr/local/bin/flowctl" || hc[2] != "health" {
		t.Errorf("flowctl healthcheck %v: want [CMD /usr/local/bin/flowctl health ...]", hc)
	} else {
		hflags, _ := parseArgs(hc[3:], nil)
		checkFlags(t, "compose healthcheck", hflags, flowctlFlags(t, "health"))
		if a, _ := flagValue(hflags, "control-plane-addr"); portOf(t, a) != cpPort {
			t.Errorf("healthcheck checks %s, the server listens on port %s", a, cpPort)
		}
	}

	// cdpd: every variable is one cdpd or the pipelines read; paths are on mounts; ports match.
	cd := dig(services, "cdpd")
	env := map[string]string{}
	for k, v := range dig(cd, "environment").(map[string]any) {
		env[k] = str(v)
		if !usage.Env[k] && !vars[k] {
			t.Errorf("cdpd environment %s: neither cdpd nor the example pipelines read it", k)
		}
	}
	if want := "flowctl:" + cpPort; env["FLOWCTL_ENDPOINT"] != want {
		t.Errorf("FLOWCTL_ENDPOINT=%q, want %q", env["FLOWCTL_ENDPOINT"], want)
	}
	if !strings.HasPrefix(env["CDPD_HTTP_ADDR"], "0.0.0.0:") {
		t.Errorf("CDPD_HTTP_ADDR=%q: must listen on 0.0.0.0 in a container", env["CDPD_HTTP_ADDR"])
	}
	httpPort := portOf(t, env["CDPD_HTTP_ADDR"])
	published := false
	for _, p := range strList(dig(cd, "ports")) {
		published = published || strings.HasSuffix(p, ":"+httpPort)
	}
	if !published {
		t.Errorf("cdpd ports %v do not publish the HTTP port %s", dig(cd, "ports"), httpPort)
	}
	cdMounts := mounts("cdpd")
	if src := cdMounts[env["CDPD_CONFIG_DIR"]]; src != "./examples" {
		t.Errorf("CDPD_CONFIG_DIR=%s is mounted from %q, want ./examples", env["CDPD_CONFIG_DIR"], src)
	}
	if _, ok := cdMounts[env["CDPD_STATE_DIR"]]; !ok {
		t.Errorf("CDPD_STATE_DIR=%s is not a volume", env["CDPD_STATE_DIR"])
	}
	for _, k := range []string{"CDP_DATASTORE", "CDP_OUT"} {
		if !underAny(env[k], cdMounts) {
			t.Errorf("%s=%s is not on a volume (mounts %v)", k, env[k], cdMounts)
		}
	}
	if dep, _ := dig(cd, "depends_on").(map[string]any); dep == nil || dep["flowctl"] == nil || dep["datastore"] == nil {
		t.Errorf("cdpd depends_on %v: want flowctl (healthy) and datastore (completed)", dig(cd, "depends_on"))
	}

	// The fixture datastore is written where cdpd reads it, by a command that exists.
	ds := dig(services, "datastore")
	if str(dig(ds, "build", "target")) != "builder" {
		t.Errorf("datastore service builds target %v, want the Dockerfile's builder stage (it has Go and the SDK's ledgers)", dig(ds, "build", "target"))
	}
	dsCmd := strings.Join(strList(dig(ds, "command")), " ")
	m := regexp.MustCompile(`go run (\./\S+) -out (\S+)`).FindStringSubmatch(dsCmd)
	if m == nil {
		t.Fatalf("datastore command %q: want go run ./test/fixture/mkdatastore -out DIR", dsCmd)
	}
	if _, err := os.Stat(filepath.Join(r, m[1], "main.go")); err != nil {
		t.Errorf("datastore command runs %s: %v", m[1], err)
	}
	dsMounts := mounts("datastore")
	var dsVolume, cdVolume string
	for dst, src := range dsMounts {
		if under(m[2], dst) {
			dsVolume = src + strings.TrimPrefix(m[2], dst)
		}
	}
	for dst, src := range cdMounts {
		if under(env["CDP_DATASTORE"], dst) {
			cdVolume = src + strings.TrimPrefix(env["CDP_DATASTORE"], dst)
		}
	}
	if dsVolume == "" || dsVolume != cdVolume {
		t.Errorf("the datastore is written to %s (%s) but cdpd reads %s (%s)", m[2], dsVolume, env["CDP_DATASTORE"], cdVolume)
	}

	// Prometheus and Grafana read files that exist (mounts checked above) and scrape cdpd.
	mounts("prometheus")
	mounts("grafana")
	prom := yamlDocs(t, filepath.Join(dir, "prometheus", "prometheus.yml"))[0]
	targets := map[string]bool{}
	for _, sc := range list(dig(prom, "scrape_configs")) {
		for _, st := range list(dig(sc, "static_configs")) {
			for _, tg := range strList(dig(st, "targets")) {
				targets[tg] = true
			}
		}
	}
	mAddr, _ := flagValue(flags, "metrics-addr")
	for _, want := range []string{"cdpd:" + httpPort, "flowctl:" + portOf(t, mAddr)} {
		if !targets[want] {
			t.Errorf("prometheus.yml does not scrape %s (targets %v)", want, sortedKeys(targets))
		}
	}

	// The two example pipelines are valid, with the environment compose gives cdpd.
	out := validateDir(t, filepath.Join(dir, "examples"), map[string]string{
		"CDP_DATASTORE": t.TempDir(), "CDP_OUT": t.TempDir(),
	})
	if !strings.Contains(out, "2 pipeline(s)") {
		t.Errorf("cdpd validate deploy/examples: %s; want 2 pipelines", out)
	}
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

func underAny(path string, mounts map[string]string) bool {
	for dst := range mounts {
		if path != "" && under(path, dst) {
			return true
		}
	}
	return false
}
