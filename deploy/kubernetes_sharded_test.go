package deploy

import (
	"strconv"
	"strings"
	"testing"

	"github.com/withobsrvr/cdpd/daemon"
	"github.com/withobsrvr/cdpd/internal/shard"
)

// The sharded variant (deploy/kubernetes/sharded): a StatefulSet checked like the Deployment
// (flags, environment, probes, mounts, security, the ConfigMap's pipelines), plus what sharding
// needs: the shard from the pod's ordinal, the shard count in one place equal to the replicas,
// a state volume per pod, parallel pod management, a governing headless Service and a
// disruption budget of one shard.
func TestKubernetesStatefulSet(t *testing.T) {
	objs := kubeObjects(t, "kubernetes", "kubernetes/sharded")
	usage := cdpdUsage(t)
	vars := pipelineVars(t)

	sts := objs["StatefulSet/cdpd"]
	if sts == nil {
		t.Fatalf("no StatefulSet/cdpd in deploy/kubernetes/sharded (have %v)", sortedKeys(objs))
	}
	if p := str(dig(sts, "spec", "podManagementPolicy")); p != "Parallel" {
		t.Errorf("podManagementPolicy %q, want Parallel: the shards are independent", p)
	}
	if u := str(dig(sts, "spec", "updateStrategy", "type")); u != "RollingUpdate" {
		t.Errorf("updateStrategy %q, want RollingUpdate (one shard at a time)", u)
	}
	replicas, ok := dig(sts, "spec", "replicas").(int)
	if !ok || replicas < 2 {
		t.Fatalf("replicas %v: a sharded fleet has at least 2", dig(sts, "spec", "replicas"))
	}
	podLabels, _ := dig(sts, "spec", "template", "metadata", "labels").(map[string]any)
	selects := func(sel map[string]any) bool {
		ok := len(sel) > 0
		for k, v := range sel {
			ok = ok && podLabels[k] == v
		}
		return ok
	}
	if sel, _ := dig(sts, "spec", "selector", "matchLabels").(map[string]any); !selects(sel) {
		t.Errorf("StatefulSet selector %v does not match its pod labels %v", sel, podLabels)
	}
	if str(podLabels["app.kubernetes.io/name"]) != "cdpd" {
		t.Errorf("pod label app.kubernetes.io/name %v: prometheus-kubernetes.yml makes it the job, rules.yml selects job=\"cdpd\"", podLabels["app.kubernetes.io/name"])
	}
	env, _ := checkCDPDPod(t, sts, objs, usage, vars)

	c := container(t, sts)
	flags, _ := parseArgs(strList(c["args"]), nil)
	get := func(name string) (string, bool) {
		if v, ok := flagValue(flags, name); ok {
			return v, true
		}
		v, ok := env[daemon.FlagEnv(name)]
		return v, ok
	}
	if idx, _ := get("shard-index"); idx != "auto" {
		t.Errorf("--shard-index %q, want auto (the pod's ordinal)", idx)
	}
	// The shard count: in one place, equal to the replicas.
	if _, ok := flagValue(flags, "shard-count"); ok {
		t.Errorf("--shard-count in the args: the count's one place is %s in the env", daemon.FlagEnv("shard-count"))
	}
	if n, _ := get("shard-count"); n != strconv.Itoa(replicas) {
		t.Errorf("%s=%q, replicas %d: they must be equal (a pod whose ordinal is not below the count refuses to start)", daemon.FlagEnv("shard-count"), n, replicas)
	}
	// The ordinal through the downward API, under the name cdpd reads.
	var podIndexPath string
	for _, e := range list(c["env"]) {
		if str(dig(e, "name")) == daemon.EnvPodIndex {
			podIndexPath = str(dig(e, "valueFrom", "fieldRef", "fieldPath"))
		}
	}
	if podIndexPath != "metadata.labels['apps.kubernetes.io/pod-index']" {
		t.Errorf("%s from %q, want the downward API's metadata.labels['apps.kubernetes.io/pod-index']", daemon.EnvPodIndex, podIndexPath)
	}
	// What cdpd makes of it: the last pod is the last shard; an ordinal beyond the count fails.
	environ := func(podIndex int) []string {
		out := []string{daemon.EnvPodIndex + "=" + strconv.Itoa(podIndex)}
		for k, v := range env {
			if k != daemon.EnvPodIndex {
				out = append(out, k+"="+v)
			}
		}
		return out
	}
	cfg, err := daemon.ParseConfig(strList(c["args"]), environ(replicas-1))
	if err != nil || cfg.Shard != (shard.Spec{Index: replicas - 1, Count: replicas}) {
		t.Errorf("pod %d of %d: cdpd runs shard %v (%v)", replicas-1, replicas, cfg.Shard, err)
	}
	if _, err := daemon.ParseConfig(strList(c["args"]), environ(replicas)); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("pod %d of %d replicas starts: %v", replicas, replicas, err)
	}

	// One state volume per pod, from a claim template.
	stateDir, _ := get("state-dir")
	if sm := mountFor(podMounts(t, sts, objs), stateDir); sm == nil || dig(sm.Volume, "persistentVolumeClaim", "template") != true {
		t.Errorf("--state-dir %s is not on a volumeClaimTemplates volume: shards must not share checkpoints", stateDir)
	}
	for _, m := range podMounts(t, sts, objs) {
		if claim := str(dig(m.Volume, "persistentVolumeClaim", "claimName")); claim != "" && !m.ReadOnly {
			t.Errorf("mount %s: claim %s shared by every pod is mounted writable", m.Path, claim)
		}
	}

	// The governing Service: headless, selecting the pods, on the named port.
	svc := objs["Service/"+str(dig(sts, "spec", "serviceName"))]
	if svc == nil {
		t.Fatalf("serviceName %q names no Service", dig(sts, "spec", "serviceName"))
	}
	if str(dig(svc, "spec", "clusterIP")) != "None" {
		t.Errorf("Service %s is not headless (clusterIP: None)", dig(svc, "metadata", "name"))
	}
	if sel, _ := dig(svc, "spec", "selector").(map[string]any); !selects(sel) {
		t.Errorf("Service %s selects %v, not the StatefulSet's pods", dig(svc, "metadata", "name"), sel)
	}
	ports := containerPorts(c)
	for _, p := range list(dig(svc, "spec", "ports")) {
		if tp := str(dig(p, "targetPort")); tp != "http" && tp != ports["http"] {
			t.Errorf("Service %s targets %q, not cdpd's HTTP port", dig(svc, "metadata", "name"), tp)
		}
	}

	// Disruptions: one shard at a time.
	var pdb k8sObject
	for key, o := range objs {
		if strings.HasPrefix(key, "PodDisruptionBudget/") {
			if sel, _ := dig(o, "spec", "selector", "matchLabels").(map[string]any); selects(sel) {
				pdb = o
			}
		}
	}
	switch {
	case pdb == nil:
		t.Error("no PodDisruptionBudget selects the StatefulSet's pods")
	case str(pdb["apiVersion"]) != "policy/v1":
		t.Errorf("PodDisruptionBudget apiVersion %v, want policy/v1", pdb["apiVersion"])
	case str(dig(pdb, "spec", "maxUnavailable")) != "1" && str(dig(pdb, "spec", "minAvailable")) != strconv.Itoa(replicas-1):
		t.Errorf("PodDisruptionBudget %v: want maxUnavailable 1 (one shard at a time)", dig(pdb, "spec"))
	}
}
