package contract

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

func TestReadEnv(t *testing.T) {
	env := map[string]string{
		EnvEndpoint: " flowctl:8080 ", EnvTLSCert: "c.pem", EnvTLSKey: "k.pem", EnvTLSCA: "ca.pem",
	}
	got := ReadEnv(func(k string) string { return env[k] })
	want := Env{Endpoint: "flowctl:8080", TLS: TLSFiles{Cert: "c.pem", Key: "k.pem", CA: "ca.pem"}}
	if got != want {
		t.Fatalf("ReadEnv = %+v, want %+v", got, want)
	}
	if e := ReadEnv(func(string) string { return "" }); e != (Env{}) || e.TLS.Enabled() {
		t.Fatalf("empty environment gives %+v", e)
	}
	if e := ReadEnv(nil); e != (Env{}) {
		t.Fatalf("nil getenv gives %+v", e)
	}
}

func TestDialOption(t *testing.T) {
	if _, err := (TLSFiles{}).DialOption(); err != nil {
		t.Fatalf("plaintext: %v", err)
	}
	if _, err := (TLSFiles{CA: t.TempDir() + "/missing.pem"}).DialOption(); err == nil {
		t.Fatal("a missing CA file is accepted")
	}
	if _, err := (TLSFiles{Cert: "c.pem"}).DialOption(); err == nil {
		t.Fatal("a certificate without a key is accepted")
	}
}

func TestIsNotFound(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("service x not found"), false}, // not a status: not the server's answer
		{status.Error(codes.NotFound, "no such service"), true},
		{status.Error(codes.Unknown, "service cdp-x Not Found"), true}, // upstream flowctl
		{status.Error(codes.Unavailable, "connection refused"), false},
		{status.Error(codes.InvalidArgument, "bad id"), false},
	} {
		if got := IsNotFound(tc.err); got != tc.want {
			t.Errorf("IsNotFound(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestStateNames(t *testing.T) {
	// Every wire status's name is a state name that parses back to it.
	for v := range flowctlv1.HealthStatus_name {
		st := flowctlv1.HealthStatus(v)
		name := StatusName(st)
		back, ok := ParseState(name)
		if st == flowctlv1.HealthStatus_HEALTH_STATUS_UNKNOWN {
			if name != StateUnknown || ok {
				t.Errorf("UNKNOWN: name %q, parses %v", name, ok)
			}
			continue
		}
		if !ok || back != st {
			t.Errorf("%v: StatusName %q parses to %v, %v", st, name, back, ok)
		}
	}
	if st, ok := ParseState(" Completed "); !ok || st != flowctlv1.HealthStatus_HEALTH_STATUS_HEALTHY {
		t.Errorf("completed parses to %v, %v; want HEALTHY", st, ok)
	}
	if _, ok := ParseState("weird"); ok {
		t.Error("an unknown state parses")
	}
	if got := StatusName(42); got != "unknown(42)" {
		t.Errorf("StatusName(42) = %q", got)
	}
	if k := HealthKey("last_error"); k != "health.last_error" {
		t.Errorf("HealthKey = %q", k)
	}
	if n, ok := CutHealth("health.x"); !ok || n != "x" {
		t.Errorf("CutHealth = %q, %v", n, ok)
	}
	if _, ok := CutHealth("pipeline.x"); ok {
		t.Error("CutHealth accepts a metric")
	}
}
