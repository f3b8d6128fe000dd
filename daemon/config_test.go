package daemon

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{
			name: "defaults",
			args: []string{"--config-dir", "conf"},
			check: func(t *testing.T, c Config) {
				if c.HTTPAddr != "127.0.0.1:9464" || c.HeartbeatInterval != 10*time.Second || c.StateDir != DefaultStateDir || c.LogFormat != "json" {
					t.Errorf("defaults: %+v", c)
				}
			},
		},
		{
			name: "environment sets every flag",
			env: map[string]string{"CDPD_CONFIG_DIR": "/etc/cdp", "CDPD_HTTP_ADDR": "127.0.0.1:1", "CDPD_HEARTBEAT_INTERVAL": "2s",
				"CDPD_INSTANCE": "eu", "FLOWCTL_ENDPOINT": "cp:8080", "FLOWCTL_TLS_CA": "ca.pem", "CDP_PIPELINE_NAME": "x"},
			check: func(t *testing.T, c Config) {
				if c.ConfigDir != "/etc/cdp" || c.HTTPAddr != "127.0.0.1:1" || c.HeartbeatInterval != 2*time.Second ||
					c.Instance != "eu" || c.FlowctlEndpoint != "cp:8080" || c.TLSCA != "ca.pem" || c.PipelineName != "x" {
					t.Errorf("from env: %+v", c)
				}
			},
		},
		{
			name: "a flag wins over the environment",
			args: []string{"--config-dir", "flag"},
			env:  map[string]string{"CDPD_CONFIG_DIR": "env"},
			check: func(t *testing.T, c Config) {
				if c.ConfigDir != "flag" {
					t.Errorf("config dir %q, want flag", c.ConfigDir)
				}
			},
		},
		{name: "config dir required", wantErr: "--config-dir (or CDPD_CONFIG_DIR) is required"},
		{name: "bad env value", env: map[string]string{"CDPD_HEARTBEAT_INTERVAL": "soon"}, wantErr: "environment CDPD_HEARTBEAT_INTERVAL"},
		{name: "bad log format", args: []string{"--config-dir", "c", "--log-format", "xml"}, wantErr: "--log-format must be json or text"},
		{name: "bad log level", args: []string{"--config-dir", "c", "--log-level", "loud"}, wantErr: "--log-level must be"},
		{name: "non-positive interval", args: []string{"--config-dir", "c", "--heartbeat-interval", "0s"}, wantErr: "--heartbeat-interval must be positive"},
		{name: "stray argument", args: []string{"--config-dir", "c", "extra"}, wantErr: `unexpected argument "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			c, err := parseFlags(tc.args, lookup, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}
