package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/withobsrvr/cdpd/control/flowctllegacy"
	"github.com/withobsrvr/cdpd/test/testproc"
)

// An upstream CDP process (simulated with a client of flowctl's legacy API, flowctl.ControlPlane,
// generated from the wire of flowctl v0.0.5: what cdp-pipeline-workflow links) registers and
// heartbeats against `flowctl server`, and shows in `flowctl status` as a healthy cdp-pipeline
// with its metrics; silent past the heartbeat TTL it turns unhealthy, like any service.
// Upstream's own server shows such a process as UNSPECIFIED, UNHEALTHY, last heartbeat "never".
func TestLegacyClientAgainstFlowctlServer(t *testing.T) {
	cp := startControlPlane(t, 0)
	cc, err := grpc.NewClient(cp.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	legacy := flowctllegacy.NewControlPlaneClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// What upstream CDP's pkg/control does: Register a pipeline with its name in the metadata,
	// then heartbeat its numeric metrics by id.
	ack, err := legacy.Register(ctx, &flowctllegacy.ServiceInfo{
		ServiceId:   "cdp-upstream-payments",
		ServiceType: flowctllegacy.ServiceType_SERVICE_TYPE_PIPELINE,
		Metadata: map[string]string{"service_name": "upstream-payments", "config_name": "upstream-payments",
			"version": "v2.3.1", "source_type": "BufferedStorageSourceAdapter"},
	}, grpc.WaitForReady(true))
	if err != nil || ack.GetServiceId() != "cdp-upstream-payments" {
		t.Fatalf("legacy Register: %v, %v", ack, err)
	}
	hb := func(uptime float64) {
		t.Helper()
		if _, err := legacy.Heartbeat(ctx, &flowctllegacy.ServiceHeartbeat{ServiceId: "cdp-upstream-payments", Metrics: map[string]float64{
			"pipeline.uptime_seconds": uptime, "pipeline.component_count": 3,
			"processor.FilterPayments.payments_found": 128, "consumer.SaveToPostgreSQL.rows_written": 96,
		}}); err != nil {
			t.Fatalf("legacy Heartbeat: %v", err)
		}
	}
	hb(75)

	out, code := cp.flowctl(t, "status")
	if code != 0 || !regexp.MustCompile(`(?m)^cdp-upstream-payments +cdp-pipeline +healthy +1m 15s +- +- +-$`).MatchString(out) {
		t.Fatalf("flowctl status: exit %d\n%s", code, out)
	}
	out, code = cp.flowctl(t, "status", "cdp-upstream-payments", "--verbose")
	for _, want := range []string{
		"Pipeline:       upstream-payments", "Status:         healthy", "Version:        v2.3.1",
		"processor.FilterPayments.payments_found", "128", "consumer.SaveToPostgreSQL.rows_written",
		"api            flowctl.ControlPlane", "History:        1 sample,",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("flowctl status cdp-upstream-payments --verbose: exit %d, no %q in\n%s", code, want, out)
		}
	}
	if out, code := cp.flowctl(t, "health", "cdp-upstream-payments"); code != 0 {
		t.Errorf("flowctl health: exit %d\n%s", code, out)
	}
	// The legacy API reads back what it wrote.
	st, err := legacy.GetServiceStatus(ctx, &flowctllegacy.ServiceInfo{ServiceId: "cdp-upstream-payments"})
	if err != nil || !st.GetIsHealthy() || st.GetMetrics()["processor.FilterPayments.payments_found"] != 128 ||
		st.GetServiceType() != flowctllegacy.ServiceType_SERVICE_TYPE_PIPELINE {
		t.Errorf("legacy GetServiceStatus: %v, %v", st, err)
	}

	// Silent past the TTL (5 s in these tests): unhealthy, as every service.
	testproc.Eventually(t, 30*time.Second, "the silent legacy service is marked unhealthy", func() (bool, string) {
		out, code := cp.flowctl(t, "status", "--status", "unhealthy", "--type", "cdp-pipeline")
		return code == 0 && strings.Contains(out, "cdp-upstream-payments"), out
	})
	hb(90)
	if out, code := cp.flowctl(t, "health", "cdp-upstream-payments"); code != 0 {
		t.Errorf("after a new heartbeat, flowctl health: exit %d\n%s", code, out)
	}
}
