package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/withobsrvr/cdpd/control/plane"
	"github.com/withobsrvr/cdpd/daemon"
	"github.com/withobsrvr/cdpd/deploy/refs"
	"github.com/withobsrvr/cdpd/internal/testutil"
)

// externalClaims are PersistentVolumeClaims the manifests use but an operator provides.
var externalClaims = map[string]string{
	"cdp-datastore": "a galexie datastore filled by the operator's exporter",
}

type k8sObject = map[string]any

func kubeObjects(t *testing.T, dirs ...string) map[string]k8sObject {
	t.Helper()
	if len(dirs) == 0 {
		dirs = []string{"kubernetes"}
	}
	out := map[string]k8sObject{}
	for _, dir := range dirs {
		kubeObjectsOf(t, dir, out)
	}
	return out
}

// kubeObjectsOf adds the objects of deploy/<dir>/*.yaml to out.
func kubeObjectsOf(t *testing.T, dir string, out map[string]k8sObject) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root(t), "deploy", dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/%s: %v", dir, err)
	}
	for _, f := range files {
		for i, d := range yamlDocs(t, f) {
			kind, name, api := str(d["kind"]), str(dig(d, "metadata", "name")), str(d["apiVersion"])
			if kind == "" || name == "" || api == "" {
				t.Errorf("%s document %d: apiVersion, kind and metadata.name are required", filepath.Base(f), i+1)
				continue
			}
			key := kind + "/" + name
			if out[key] != nil {
				t.Errorf("%s: %s defined twice", filepath.Base(f), key)
			}
			out[key] = d
		}
	}
}

// container returns the only container of a Deployment or StatefulSet.
func container(t *testing.T, d k8sObject) map[string]any {
	t.Helper()
	cs := list(dig(d, "spec", "template", "spec", "containers"))
	if len(cs) != 1 {
		t.Fatalf("%s %s: %d containers, want 1", d["kind"], dig(d, "metadata", "name"), len(cs))
	}
	return cs[0].(map[string]any)
}

// podVolumes returns a Deployment's container mounts: mountPath -> the volume's definition,
// with readOnly and subPath of the mount.
type mount struct {
	Path     string
	ReadOnly bool
	SubPath  string
	Volume   map[string]any
}

func podMounts(t *testing.T, d k8sObject, objs map[string]k8sObject) []mount {
	t.Helper()
	vols := map[string]map[string]any{}
	// A StatefulSet's claim templates are volumes of its pods (one claim per pod).
	for _, ct := range list(dig(d, "spec", "volumeClaimTemplates")) {
		name := str(dig(ct, "metadata", "name"))
		vols[name] = map[string]any{"name": name, "persistentVolumeClaim": map[string]any{"template": true}}
	}
	for _, v := range list(dig(d, "spec", "template", "spec", "volumes")) {
		vm := v.(map[string]any)
		vols[str(vm["name"])] = vm
		if c := str(dig(vm, "persistentVolumeClaim", "claimName")); c != "" {
			if objs["PersistentVolumeClaim/"+c] == nil && externalClaims[c] == "" {
				t.Errorf("volume %s: PersistentVolumeClaim %s is not defined", vm["name"], c)
			}
		}
		if c := str(dig(vm, "configMap", "name")); c != "" && objs["ConfigMap/"+c] == nil {
			t.Errorf("volume %s: ConfigMap %s is not defined", vm["name"], c)
		}
	}
	var out []mount
	for _, m := range list(container(t, d)["volumeMounts"]) {
		mm := m.(map[string]any)
		v := vols[str(mm["name"])]
		if v == nil {
			t.Errorf("volumeMount %s: no such volume", mm["name"])
			continue
		}
		ro, _ := mm["readOnly"].(bool)
		out = append(out, mount{Path: str(mm["mountPath"]), ReadOnly: ro, SubPath: str(mm["subPath"]), Volume: v})
	}
	return out
}

func mountFor(ms []mount, path string) *mount {
	var best *mount
	for i := range ms {
		if under(path, ms[i].Path) && (best == nil || len(ms[i].Path) > len(best.Path)) {
			best = &ms[i]
		}
	}
	return best
}

// containerPorts maps a container's port names to numbers.
func containerPorts(c map[string]any) map[string]string {
	out := map[string]string{}
	for _, p := range list(c["ports"]) {
		out[str(dig(p, "name"))] = str(dig(p, "containerPort"))
	}
	return out
}

func TestKubernetes(t *testing.T) {
	objs := kubeObjects(t)
	usage := cdpdUsage(t)
	vars := pipelineVars(t)

	dep := objs["Deployment/cdpd"]
	if dep == nil {
		t.Fatalf("no Deployment/cdpd (have %v)", sortedKeys(objs))
	}
	if r := dig(dep, "spec", "replicas"); r != 1 {
		t.Errorf("cdpd replicas %v, want 1", r)
	}
	if s := str(dig(dep, "spec", "strategy", "type")); s != "Recreate" {
		t.Errorf("cdpd strategy %v: two cdpd never run on one state directory (the second refuses to start), so a surge pod would never be ready", dig(dep, "spec", "strategy"))
	}
	podLabels, _ := dig(dep, "spec", "template", "metadata", "labels").(map[string]any)
	for k, v := range dig(dep, "spec", "selector", "matchLabels").(map[string]any) {
		if podLabels[k] != v {
			t.Errorf("cdpd selector %s=%v does not match the pod labels %v", k, v, podLabels)
		}
	}
	env, ann := checkCDPDPod(t, dep, objs, usage, vars)

	// The control plane: real flags, ports, the Service cdpd dials.
	fdep := objs["Deployment/flowctl"]
	if fdep == nil {
		t.Fatal("no Deployment/flowctl")
	}
	fc := container(t, fdep)
	if cmd := strList(fc["command"]); len(cmd) != 1 || cmd[0] != "/usr/local/bin/flowctl" {
		t.Errorf("flowctl command %v, want [/usr/local/bin/flowctl] (where the Dockerfile puts it)", cmd)
	}
	fargs := strList(fc["args"])
	if len(fargs) == 0 || fargs[0] != "server" {
		t.Fatalf("flowctl args %v: want server ...", fargs)
	}
	fflags, _ := parseArgs(fargs[1:], map[string]bool{"no-persistence": true})
	checkFlags(t, "Deployment/flowctl args", fflags, flowctlFlags(t, "server"))
	fports := containerPorts(fc)
	if p, _ := flagValue(fflags, "port"); p != fports["grpc"] {
		t.Errorf("flowctl --port %s, containerPort grpc %s", p, fports["grpc"])
	}
	if a, _ := flagValue(fflags, "address"); a != "0.0.0.0" {
		t.Errorf("flowctl --address %s: cdpd in another pod cannot reach it", a)
	}
	ma, _ := flagValue(fflags, "metrics-addr")
	fann, _ := dig(fdep, "spec", "template", "metadata", "annotations").(map[string]any)
	if portOf(t, ma) != fports["metrics"] || str(fann["prometheus.io/port"]) != fports["metrics"] {
		t.Errorf("flowctl --metrics-addr %s, containerPort metrics %s, annotation %v", ma, fports["metrics"], fann["prometheus.io/port"])
	}
	if db, _ := flagValue(fflags, "db-path"); mountFor(podMounts(t, fdep, objs), db) == nil {
		t.Errorf("flowctl --db-path %s is not on a volume", db)
	}
	if s := str(dig(fdep, "spec", "strategy", "type")); s != "Recreate" {
		t.Errorf("flowctl strategy %s: two servers must never open one bbolt file", s)
	}
	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		if p := str(dig(fc, probe, "grpc", "port")); p != fports["grpc"] {
			t.Errorf("flowctl %s gRPC port %q, want %s", probe, p, fports["grpc"])
		}
	}
	svc := objs["Service/flowctl"]
	host, port, _ := net.SplitHostPort(env["FLOWCTL_ENDPOINT"])
	if svc == nil || host != "flowctl" {
		t.Errorf("FLOWCTL_ENDPOINT=%s does not name Service/flowctl", env["FLOWCTL_ENDPOINT"])
	} else {
		found := false
		for _, p := range list(dig(svc, "spec", "ports")) {
			if str(dig(p, "port")) == port {
				found = true
				if tp := str(dig(p, "targetPort")); tp != "grpc" && tp != fports["grpc"] {
					t.Errorf("Service/flowctl port %s targets %s, not the gRPC port", port, tp)
				}
			}
		}
		if !found {
			t.Errorf("Service/flowctl has no port %s (FLOWCTL_ENDPOINT)", port)
		}
	}
	// Every Service selects pods of a Deployment and targets named ports that exist.
	for key, o := range objs {
		if !strings.HasPrefix(key, "Service/") {
			continue
		}
		sel, _ := dig(o, "spec", "selector").(map[string]any)
		var target k8sObject
		for k2, d := range objs {
			if !strings.HasPrefix(k2, "Deployment/") {
				continue
			}
			labels, _ := dig(d, "spec", "template", "metadata", "labels").(map[string]any)
			ok := len(sel) > 0
			for k, v := range sel {
				ok = ok && labels[k] == v
			}
			if ok {
				target = d
			}
		}
		if target == nil {
			t.Errorf("%s selects no Deployment's pods", key)
			continue
		}
		tports := containerPorts(container(t, target))
		for _, p := range list(dig(o, "spec", "ports")) {
			tp := str(dig(p, "targetPort"))
			if _, err := strconv.Atoi(tp); err != nil && tports[tp] == "" {
				t.Errorf("%s targets port %q, which the container does not name", key, tp)
			}
		}
	}
	probeControlPlaneHealth(t)

	// The annotations are the ones prometheus-kubernetes.yml relabels on.
	pk, err := os.ReadFile(filepath.Join(root(t), "deploy", "prometheus", "prometheus-kubernetes.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for a := range ann {
		meta := "__meta_kubernetes_pod_annotation_" + strings.NewReplacer(".", "_", "/", "_", "-", "_").Replace(a)
		if !strings.Contains(string(pk), meta) {
			t.Errorf("annotation %s: prometheus-kubernetes.yml does not use %s", a, meta)
		}
	}
	if !strings.Contains(string(pk), "__meta_kubernetes_pod_label_app_kubernetes_io_name") || str(podLabels["app.kubernetes.io/name"]) != "cdpd" {
		t.Errorf("prometheus-kubernetes.yml takes the job from app.kubernetes.io/name; the cdpd pod must be labelled cdpd (rules.yml selects job=\"cdpd\")")
	}
}

// checkCDPDPod checks the pod template of a cdpd workload (the Deployment or the sharded
// StatefulSet) against cdpd's own flags, environment, ports and routes: probes, scrape
// annotations, the ConfigMap as the config dir, a writable claim as the state dir, the
// security settings, the grace period, and the ConfigMap's pipelines valid under its
// environment. It returns the container's environment and the pod's annotations.
func checkCDPDPod(t *testing.T, dep k8sObject, objs map[string]k8sObject, usage refs.CDPD, vars map[string]bool) (map[string]string, map[string]any) {
	t.Helper()
	where := str(dep["kind"]) + "/" + str(dig(dep, "metadata", "name"))
	c := container(t, dep)
	flags, pos := parseArgs(strList(c["args"]), nil)
	if len(pos) > 0 || c["command"] != nil {
		t.Errorf("cdpd: command %v / positional args %v: the image's entrypoint is cdpd, give only flags", c["command"], pos)
	}
	checkFlags(t, where+" args", flags, usage.Flags)
	env := map[string]string{}
	for _, e := range list(c["env"]) {
		n := str(dig(e, "name"))
		env[n] = str(dig(e, "value"))
		if !usage.Env[n] && !vars[n] {
			t.Errorf("%s env %s: neither cdpd nor the pipelines of the ConfigMap read it", where, n)
		}
	}
	get := func(name string) string {
		if v, ok := flagValue(flags, name); ok {
			return v
		}
		return env["CDPD_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))]
	}

	// HTTP: all interfaces, the named port, the probes and the scrape annotations agree.
	httpAddr := get("http-addr")
	if !strings.HasPrefix(httpAddr, "0.0.0.0:") {
		t.Errorf("--http-addr=%q: probes and Prometheus come from outside the pod; listen on 0.0.0.0", httpAddr)
	}
	ports := containerPorts(c)
	if ports["http"] != portOf(t, httpAddr) {
		t.Errorf("containerPort http=%s, --http-addr port %s", ports["http"], portOf(t, httpAddr))
	}
	ann, _ := dig(dep, "spec", "template", "metadata", "annotations").(map[string]any)
	if str(ann["prometheus.io/scrape"]) != "true" || str(ann["prometheus.io/port"]) != ports["http"] {
		t.Errorf("cdpd scrape annotations %v: want scrape \"true\" on port %s", ann, ports["http"])
	}
	probes := map[string]string{"/metrics": "GET"} // path -> method, checked on a real cdpd below
	probes[str(ann["prometheus.io/path"])] = "GET"
	for probe, want := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		path, port := str(dig(c, probe, "httpGet", "path")), str(dig(c, probe, "httpGet", "port"))
		if path != want {
			t.Errorf("%s path %q, want %s", probe, path, want)
		}
		if port != "http" && port != ports["http"] {
			t.Errorf("%s port %q is not cdpd's HTTP port", probe, port)
		}
		probes[path] = "GET"
	}
	probeCDPD(t, probes)

	// Config dir: the ConfigMap mounted as a directory (so the ..data swap reaches cdpd),
	// read-only; state dir and outputs on the PVC.
	ms := podMounts(t, dep, objs)
	cfgDir := get("config-dir")
	cm := mountFor(ms, cfgDir)
	if cm == nil || cm.Path != cfgDir || dig(cm.Volume, "configMap") == nil {
		t.Errorf("--config-dir %s is not a ConfigMap volume mount", cfgDir)
	} else if cm.SubPath != "" {
		t.Errorf("--config-dir is mounted with subPath: the kubelet never updates subPath mounts")
	}
	stateDir := get("state-dir")
	if sm := mountFor(ms, stateDir); sm == nil || sm.ReadOnly || dig(sm.Volume, "persistentVolumeClaim") == nil {
		t.Errorf("--state-dir %s is not a writable PersistentVolumeClaim mount", stateDir)
	}
	if om := mountFor(ms, env["CDP_OUT"]); om == nil || om.ReadOnly {
		t.Errorf("CDP_OUT=%s is not on a writable mount (the root file system is read-only)", env["CDP_OUT"])
	}
	if dm := mountFor(ms, env["CDP_DATASTORE"]); dm == nil {
		t.Errorf("CDP_DATASTORE=%s is not on a mount", env["CDP_DATASTORE"])
	}
	if ro, _ := dig(c, "securityContext", "readOnlyRootFilesystem").(bool); !ro {
		t.Errorf("cdpd: readOnlyRootFilesystem is not set")
	}
	if nr, _ := dig(dep, "spec", "template", "spec", "securityContext", "runAsNonRoot").(bool); !nr {
		t.Errorf("cdpd: runAsNonRoot is not set")
	}
	drain, err := time.ParseDuration(get("drain-timeout"))
	if err != nil {
		drain = daemon.DefaultDrainTimeout
	}
	if g, _ := dig(dep, "spec", "template", "spec", "terminationGracePeriodSeconds").(int); time.Duration(g)*time.Second <= drain {
		t.Errorf("terminationGracePeriodSeconds %d is not longer than the drain timeout %s: the kubelet would kill cdpd mid-drain", g, drain)
	}

	// The ConfigMap holds deploy/examples, valid with the Deployment's environment.
	cmObj := objs["ConfigMap/"+str(dig(cm.Volume, "configMap", "name"))]
	data, _ := dig(cmObj, "data").(map[string]any)
	examples, _ := filepath.Glob(filepath.Join(root(t), "deploy", "examples", "*.yaml"))
	if len(data) != len(examples) {
		t.Errorf("ConfigMap has %d files, deploy/examples %d", len(data), len(examples))
	}
	dir := t.TempDir()
	for _, f := range examples {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if str(data[filepath.Base(f)]) != string(b) {
			t.Errorf("ConfigMap key %s differs from deploy/examples/%s", filepath.Base(f), filepath.Base(f))
		}
	}
	for k, v := range data {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(str(v)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	validateDir(t, dir, map[string]string{"CDP_DATASTORE": env["CDP_DATASTORE"], "CDP_OUT": env["CDP_OUT"]})

	return env, ann
}

// probeCDPD starts a real cdpd (in-process, on a free loopback port, an empty config dir) and
// checks that every path answers 200.
func probeCDPD(t *testing.T, paths map[string]string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := daemon.Config{
		ConfigDir: t.TempDir(), StateDir: t.TempDir(), HTTPAddr: addr,
		HeartbeatInterval: daemon.DefaultHeartbeatInterval, DrainTimeout: 5 * time.Second,
		LogFormat: "text", LogLevel: "error",
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemon.Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("cdpd: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("cdpd did not stop within 15 s")
		}
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	for path, method := range paths {
		// Only "not ready yet" (503) or a refused connection is worth a retry; any other answer
		// is final.
		var final error
		testutil.EventuallyWhy(t, 10*time.Second, method+" "+path+" on a real cdpd answers", func() (bool, string) {
			req, _ := http.NewRequest(method, "http://"+addr+path, nil)
			resp, err := client.Do(req)
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				return true, ""
			case http.StatusServiceUnavailable:
				return false, "status 503"
			}
			final = fmt.Errorf("status %d", resp.StatusCode)
			return true, ""
		})
		if final != nil {
			t.Errorf("%s %s on a real cdpd: %v", method, path, final)
		}
	}
}

// probeControlPlaneHealth checks that cdpd's control plane serves the gRPC health service the
// flowctl Deployment's probes use.
func probeControlPlaneHealth(t *testing.T) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- plane.Run(ctx, plane.Config{Listener: lis, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("control plane: %v", err)
		}
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	resp, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health check of the control plane (the flowctl probes): %v %v", resp, err)
	}
}
