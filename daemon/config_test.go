package daemon

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/control/server"
	"github.com/withobsrvr/cdpd/internal/shard"
)

func TestParseFlags(t *testing.T) {
	dir := t.TempDir()
	writeFile := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	full := writeFile("full.yaml", "config-dir: /from/file\nstate-dir: /var/lib/cdpd\nheartbeat-interval: 40s\ninstance: file\nlog-level: debug\n")
	unknown := writeFile("unknown.yaml", "config-dir: c\nheartbeat_interval: 5s\n")
	nested := writeFile("nested.yaml", "config-dir: c\nlog:\n  level: debug\n")
	list := writeFile("list.yaml", "config-dir: [a, b]\n")
	badValue := writeFile("bad-value.yaml", "config-dir: c\nheartbeat-interval: 10\n")
	recursive := writeFile("recursive.yaml", "config-dir: c\nconfig-file: other.yaml\n")
	syntax := writeFile("syntax.yaml", "config-dir: [c\n")

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
				want := Config{ConfigDir: "conf", StateDir: DefaultStateDir, HTTPAddr: DefaultHTTPAddr, HeartbeatInterval: DefaultHeartbeatInterval,
					DrainTimeout: DefaultDrainTimeout, StuckAfter: DefaultStuckAfter, LedgerMemory: DefaultLedgerMemory,
					LogFormat: "json", LogLevel: "info",
					EmbeddedHistoryMaxBytes: server.DefaultHistoryMaxBytes, EmbeddedHistoryTotalBytes: server.DefaultHistoryTotalBytes,
					EmbeddedServiceExpiry: server.DefaultServiceExpiry,
					ShardCount:            1, ShardIndex: "0", Shard: shard.Spec{Index: 0, Count: 1}}
				if c != want {
					t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
				}
			},
		},
		{
			name: "ledger memory with units, from the flag and the environment",
			args: []string{"--config-dir", "conf", "--ledger-memory", "1GiB"},
			check: func(t *testing.T, c Config) {
				if c.LedgerMemory != 1<<30 {
					t.Errorf("--ledger-memory 1GiB = %d", c.LedgerMemory)
				}
			},
		},
		{
			name: "ledger memory from CDPD_LEDGER_MEMORY",
			env:  map[string]string{"CDPD_CONFIG_DIR": "c", "CDPD_LEDGER_MEMORY": "64MB"},
			check: func(t *testing.T, c Config) {
				if c.LedgerMemory != 64_000_000 {
					t.Errorf("CDPD_LEDGER_MEMORY=64MB = %d", c.LedgerMemory)
				}
			},
		},
		{
			name:    "a ledger memory that is no size",
			env:     map[string]string{"CDPD_CONFIG_DIR": "c", "CDPD_LEDGER_MEMORY": "lots"},
			wantErr: `environment CDPD_LEDGER_MEMORY: want a size such as 256MiB or 1GiB, got "lots"`,
		},
		{
			name: "environment sets every flag",
			env: map[string]string{"CDPD_CONFIG_DIR": "/etc/cdp", "CDPD_HTTP_ADDR": "127.0.0.1:1", "CDPD_HEARTBEAT_INTERVAL": "2s",
				"CDPD_INSTANCE": "eu", "FLOWCTL_ENDPOINT": "cp:8080", "FLOWCTL_TLS_CA": "ca.pem", "CDP_PIPELINE_NAME": "x",
				"CDPD_REQUIRE_POSTGRES": "1"}, // not a flag of cdpd: ignored
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
		{
			name: "the config file sets what nothing else does",
			args: []string{"--config-file", full},
			check: func(t *testing.T, c Config) {
				if c.ConfigDir != "/from/file" || c.StateDir != "/var/lib/cdpd" || c.HeartbeatInterval != 40*time.Second ||
					c.Instance != "file" || c.LogLevel != "debug" || c.HTTPAddr != DefaultHTTPAddr {
					t.Errorf("from file: %+v", c)
				}
			},
		},
		{
			name: "flag over environment over file over default",
			args: []string{"--instance", "flag"},
			env:  map[string]string{"CDPD_CONFIG_FILE": full, "CDPD_INSTANCE": "env", "CDPD_HEARTBEAT_INTERVAL": "3s"},
			check: func(t *testing.T, c Config) {
				if c.ConfigFile != full || c.Instance != "flag" || c.HeartbeatInterval != 3*time.Second ||
					c.StateDir != "/var/lib/cdpd" || c.DrainTimeout != DefaultDrainTimeout {
					t.Errorf("layers: %+v", c)
				}
			},
		},
		{
			name: "--config-file wins over CDPD_CONFIG_FILE",
			args: []string{"--config-file", full},
			env:  map[string]string{"CDPD_CONFIG_FILE": unknown},
			check: func(t *testing.T, c Config) {
				if c.ConfigFile != full || c.ConfigDir != "/from/file" {
					t.Errorf("config file %q, config dir %q: want the file of the flag", c.ConfigFile, c.ConfigDir)
				}
			},
		},
		{name: "config dir required", wantErr: "--config-dir (or CDPD_CONFIG_DIR) is required"},
		{name: "bad env value", env: map[string]string{"CDPD_HEARTBEAT_INTERVAL": "soon"}, wantErr: "environment CDPD_HEARTBEAT_INTERVAL"},
		{name: "bad log format", args: []string{"--config-dir", "c", "--log-format", "xml"}, wantErr: "--log-format must be json or text"},
		{name: "bad log level", args: []string{"--config-dir", "c", "--log-level", "loud"}, wantErr: "--log-level must be"},
		{name: "non-positive interval", args: []string{"--config-dir", "c", "--heartbeat-interval", "0s"}, wantErr: "--heartbeat-interval must be positive"},
		{name: "stray argument", args: []string{"--config-dir", "c", "extra"}, wantErr: `unexpected argument "extra"`},
		{name: "missing config file", args: []string{"--config-file", filepath.Join(dir, "none.yaml")}, wantErr: "config file " + filepath.Join(dir, "none.yaml")},
		{name: "unknown key in the config file", args: []string{"--config-file", unknown}, wantErr: `config file ` + unknown + `: unknown setting "heartbeat_interval"`},
		{name: "nested key in the config file", args: []string{"--config-file", nested}, wantErr: `unknown setting "log.level"`},
		{name: "list in the config file", args: []string{"--config-file", list}, wantErr: "config file " + list + ": config-dir: want a single value"},
		{name: "bad value in the config file", args: []string{"--config-file", badValue}, wantErr: "config file " + badValue + ": heartbeat-interval: "},
		{name: "config file naming a config file", args: []string{"--config-file", recursive}, wantErr: `unknown setting "config-file"`},
		{name: "config file syntax", args: []string{"--config-file", syntax}, wantErr: "config file " + syntax + ": "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var environ []string
			for k, v := range tc.env {
				environ = append(environ, k+"="+v)
			}
			c, err := parseFlags(tc.args, environ)
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

func TestParseFlagsHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		if _, err := parseFlags([]string{arg}, nil); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s: error %v, want flag.ErrHelp", arg, err)
		}
	}
}

func TestFlagEnvRoundTrip(t *testing.T) {
	serveFlags(&Config{}).VisitAll(func(f *flag.Flag) {
		env := FlagEnv(f.Name)
		if back := envFlag(env); back != f.Name {
			t.Errorf("flag %s -> %s -> %s", f.Name, env, back)
		}
	})
	if got := envFlag("FLOWCTL_ENDPOINT"); got != "" {
		t.Errorf("envFlag(FLOWCTL_ENDPOINT) = %q, want none", got)
	}
}
