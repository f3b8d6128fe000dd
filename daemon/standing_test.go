package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/control/server"
	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/test/fixture"
)

func apiErrors(t *testing.T, base string) []ConfigError {
	t.Helper()
	code, body := get(base + "/api/v1/errors")
	if code != 200 {
		t.Fatalf("GET /api/v1/errors: %d %s", code, body)
	}
	var out []ConfigError
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func errorOf(errs []ConfigError, pipeline string) *ConfigError {
	for i := range errs {
		if errs[i].Pipeline == pipeline {
			return &errs[i]
		}
	}
	return nil
}

// TestUnregistrablePipelinesAreReported (issue 17 item 4): a pipeline whose name maps to a
// service id another pipeline holds used to show registered: true (the holder's) and was
// missing from /api/v1/errors; one the control plane refuses (its registry is full) showed
// registered: false and nothing else. Both say why, in the pipeline's registration_error and in
// /api/v1/errors, and are counted (cdpd_service_id_conflicts, cdpd_control_refused_pipelines).
func TestUnregistrablePipelinesAreReported(t *testing.T) {
	ds, err := fixture.Build(t.TempDir(), fixture.Options{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	// run starts a daemon on pipelines (name -> file) and a control plane with room for max
	// services (0: the default).
	run := func(t *testing.T, max int, pipelines map[string]string) string {
		cp := startPlaneWith(t, server.Options{MaxServices: max})
		conf := t.TempDir()
		for name, file := range pipelines {
			writeAtomic(t, filepath.Join(conf, file), pipelineYAML(name, ds.Dir, ds.Last-1, 0))
		}
		base, stop := runDaemon(t, Config{ConfigDir: conf, FlowctlEndpoint: cp.addr, HeartbeatInterval: 200 * time.Millisecond})
		t.Cleanup(func() {
			if err := stop(); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
		return base
	}

	t.Run("service id conflict", func(t *testing.T) {
		base := run(t, 0, map[string]string{"contract-events": "a.yaml", "Contract_Events": "b.yaml"})
		var holder, twin PipelineStatus
		testutil.EventuallyWhy(t, 20*time.Second, "one registered, one reporting the conflict", func() (bool, string) {
			holder, twin = PipelineStatus{}, PipelineStatus{}
			for _, name := range []string{"contract-events", "Contract_Events"} {
				if s := statusOf(t, base, name); s.Registered {
					holder = s
				} else {
					twin = s
				}
			}
			return holder.Name != "" && twin.Name != "", fmt.Sprintf("holder %q, twin %q", holder.Name, twin.Name)
		})
		if holder.RegistrationError != "" || !strings.Contains(twin.RegistrationError, "service id cdp-contract-events is already used by pipeline "+holder.Name) {
			t.Errorf("registration_error: holder %q, twin %q", holder.RegistrationError, twin.RegistrationError)
		}
		errs := apiErrors(t, base)
		if e := errorOf(errs, twin.Name); e == nil || e.File != twin.File || e.Line == 0 || !strings.Contains(e.Message, "already used by pipeline") {
			t.Errorf("/api/v1/errors does not list the twin's conflict: %+v", errs)
		}
		if e := errorOf(errs, holder.Name); e != nil {
			t.Errorf("/api/v1/errors lists the holder: %+v", e)
		}
		if v := metricValue(t, base, "cdpd_service_id_conflicts"); v != "1" {
			t.Errorf("cdpd_service_id_conflicts = %q", v)
		}
	})

	t.Run("registry full", func(t *testing.T) {
		base := run(t, 1, map[string]string{"first": "a.yaml", "second": "b.yaml"})
		var refused PipelineStatus
		testutil.EventuallyWhy(t, 20*time.Second, "one registered, one refused", func() (bool, string) {
			v := metricValue(t, base, "cdpd_control_refused_pipelines")
			registered := 0
			for _, name := range []string{"first", "second"} {
				if s := statusOf(t, base, name); s.Registered {
					registered++
				} else {
					refused = s
				}
			}
			return v == "1" && registered == 1 && refused.RegistrationError != "",
				fmt.Sprintf("cdpd_control_refused_pipelines %s, %d registered, registration_error %q", v, registered, refused.RegistrationError)
		})
		if !strings.Contains(refused.RegistrationError, "the control plane refuses the pipeline: register: ResourceExhausted: registry full") {
			t.Errorf("the refused pipeline %s: registration_error %q", refused.Name, refused.RegistrationError)
		}
		if e := errorOf(apiErrors(t, base), refused.Name); e == nil || !strings.Contains(e.Message, "registry full") {
			t.Errorf("/api/v1/errors does not list the refusal of %s", refused.Name)
		}
	})
}

// TestRejectedEditIsVisible (issue 17 item 4b): after an edit that does not parse or does not
// validate, the old version keeps running, and now says so: config_error in the API (also for
// a YAML syntax error, which names no pipeline), DEGRADED with a config_rejected health detail
// naming file:line, in the API and at the control plane, until the file is fixed.
func TestRejectedEditIsVisible(t *testing.T) {
	ds, err := fixture.Build(t.TempDir(), fixture.Options{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	cp := startPlane(t)
	conf := t.TempDir()
	file := filepath.Join(conf, "p.yaml")
	other := filepath.Join(conf, "q.yaml")
	// Unbounded: the pipelines keep running at the tip of the datastore.
	good := pipelineYAML("p", ds.Dir, ds.Last-1, 0)
	writeAtomic(t, file, good)
	writeAtomic(t, other, pipelineYAML("q", ds.Dir, ds.Last-1, 0))
	base, stop := runDaemon(t, Config{ConfigDir: conf, FlowctlEndpoint: cp.addr, HeartbeatInterval: 200 * time.Millisecond})
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	id := control.ServiceID("", "p")
	plane := func() (flowctlv1.HealthStatus, string) {
		s := cp.status(id)
		return s.GetStatus(), s.GetMetrics()["health.config_rejected"]
	}
	testutil.EventuallyWhy(t, 20*time.Second, "p healthy at the control plane", func() (bool, string) {
		st, _ := plane()
		return st == flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY, st.String()
	})
	gen := statusOf(t, base, "p").Generation

	for _, tc := range []struct {
		name, content, want string
	}{
		// A YAML syntax error: the whole file is rejected, no pipeline named.
		{"yaml syntax", strings.Replace(good, "  source:", "  source: [unclosed", 1), "p.yaml:"},
		// A component that does not validate: the pipeline is named.
		{"unknown processor", strings.Replace(good, "LatestLedger", "NoSuchProcessor", 1), "p.yaml:7:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeAtomic(t, file, tc.content)
			testutil.EventuallyWhy(t, 20*time.Second, "the rejection visible", func() (bool, string) {
				s := statusOf(t, base, "p")
				st, detail := plane()
				return s.Health == "degraded" && strings.Contains(s.ConfigError, tc.want) &&
						s.HealthDetails["config_rejected"] == s.ConfigError &&
						st == flowctlv1.HealthStatus_HEALTH_STATUS_DEGRADED && detail == s.ConfigError,
					fmt.Sprintf("API %s %q; control plane %s %q", s.Health, s.ConfigError, st, detail)
			})
			if s := statusOf(t, base, "p"); s.Status != "running" || s.Generation != gen {
				t.Errorf("the old version does not run on: %s generation %d", s.Status, s.Generation)
			}
			if s := statusOf(t, base, "q"); s.Health != "healthy" || s.ConfigError != "" {
				t.Errorf("another file's pipeline is affected: %s %q", s.Health, s.ConfigError)
			}
		})
	}

	writeAtomic(t, file, good)
	testutil.EventuallyWhy(t, 20*time.Second, "healthy again once fixed", func() (bool, string) {
		s := statusOf(t, base, "p")
		st, detail := plane()
		return s.Health == "healthy" && s.ConfigError == "" && st == flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY && detail == "",
			fmt.Sprintf("API %s %q; control plane %s %q", s.Health, s.ConfigError, st, detail)
	})
}

// TestValidateRejectsServiceIDTwins (issue 17 item 4b): MyEvents, my-events and my_events are
// all cdp-my-events; only one could register, so `cdpd validate` fails naming the others,
// where it used to report them all valid.
func TestValidateRejectsServiceIDTwins(t *testing.T) {
	ds, err := fixture.Build(t.TempDir(), fixture.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i, name := range []string{"MyEvents", "my-events", "my_events", "other", "more"} {
		writeAtomic(t, filepath.Join(dir, fmt.Sprintf("%d.yaml", i)), pipelineYAML(name, ds.Dir, ds.First, ds.First))
	}
	code, out, errOut := cdpd("validate", dir)
	if code != 1 {
		t.Fatalf("validate exit %d, want 1\nstdout %s\nstderr %s", code, out, errOut)
	}
	for _, want := range []string{"1.yaml:1:1: pipeline my-events: service id cdp-my-events is also the id of pipeline MyEvents",
		"2.yaml:1:1: pipeline my_events: service id cdp-my-events", "2 error(s); 3 valid pipeline(s): MyEvents, more, other"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate output lacks %q:\n%s", want, errOut)
		}
	}
	code, out, _ = cdpd("validate", "--json", dir)
	var rep validateReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.OK || len(rep.Errors) != 2 || len(rep.Pipelines) != 3 {
		t.Errorf("validate --json: exit %d, %+v (%v)", code, rep, err)
	}
}

// TestCheckpointFailureReachesTheControlPlane (issue 17 item 3, end to end): a pipeline whose
// checkpoint cannot be written is DEGRADED with the cause at the control plane (heartbeats),
// in the API's last_error, and in cdp_pipeline_checkpoint_errors_total. The state directory of
// the pipeline is replaced by a regular file: a failure root gets too.
func TestCheckpointFailureReachesTheControlPlane(t *testing.T) {
	ds, err := fixture.Build(t.TempDir(), fixture.Options{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	cp := startPlane(t)
	conf, state := t.TempDir(), t.TempDir()
	writeAtomic(t, filepath.Join(conf, "p.yaml"), pipelineYAML("p", ds.Dir, ds.Last-1, 0))
	base, stop := runDaemon(t, Config{ConfigDir: conf, StateDir: state, FlowctlEndpoint: cp.addr, HeartbeatInterval: 200 * time.Millisecond})
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	testutil.Eventually(t, 20*time.Second, "a first checkpoint", func() bool { return statusOf(t, base, "p").Checkpoint == ds.Last })
	dir := filepath.Join(state, "pipelines", "p")
	testutil.EventuallyWhy(t, 20*time.Second, "the state directory replaced by a file", func() (bool, string) {
		if err := os.RemoveAll(dir); err != nil {
			return false, err.Error()
		}
		if err := os.WriteFile(dir, []byte("not a directory\n"), 0o644); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	if _, err := fixture.Append(ds.Dir, 2); err != nil { // new ledgers: a checkpoint to write
		t.Fatal(err)
	}
	id := control.ServiceID("", "p")
	testutil.EventuallyWhy(t, 30*time.Second, "the failure at the control plane", func() (bool, string) {
		s := cp.status(id)
		return s.GetStatus() == flowctlv1.HealthStatus_HEALTH_STATUS_DEGRADED &&
				strings.Contains(s.GetMetrics()["health.checkpoint_error"], "writing the checkpoint failed") &&
				strings.Contains(s.GetMetrics()["health.last_error"], "not a directory"),
			fmt.Sprintf("%s %q", s.GetStatus(), s.GetMetrics()["health.checkpoint_error"])
	})
	s := statusOf(t, base, "p")
	if s.Health != "degraded" || !strings.Contains(s.LastError, "writing the checkpoint failed") || s.CurrentLedger <= s.Checkpoint {
		t.Errorf("API: health %s, last_error %q, current %d, checkpoint %d", s.Health, s.LastError, s.CurrentLedger, s.Checkpoint)
	}
	_, body := get(base + "/metrics")
	if !strings.Contains(body, `cdp_pipeline_checkpoint_errors_total{pipeline="p"}`) || strings.Contains(body, `cdp_pipeline_checkpoint_errors_total{pipeline="p"} 0`) {
		t.Errorf("cdp_pipeline_checkpoint_errors_total of p missing or 0")
	}
}
