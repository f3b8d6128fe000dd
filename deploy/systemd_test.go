package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// unit is a parsed systemd unit: section -> key -> values (a key may repeat).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, i+1, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unit) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func TestSystemdUnits(t *testing.T) {
	dir := filepath.Join(root(t), "deploy", "systemd")
	usage := cdpdUsage(t)

	u := parseUnit(t, filepath.Join(dir, "cdpd.service"))
	exec := strings.Fields(u.get("Service", "ExecStart"))
	if len(exec) == 0 || filepath.Base(exec[0]) != "cdpd" {
		t.Fatalf("cdpd.service ExecStart %v: want the cdpd binary", exec)
	}
	flags, pos := parseArgs(exec[1:], nil)
	if len(pos) > 0 {
		t.Errorf("cdpd.service ExecStart: unexpected arguments %v", pos)
	}
	checkFlags(t, "cdpd.service ExecStart", flags, usage.Flags)
	stateDir, _ := flagValue(flags, "state-dir")
	if sd := u.get("Service", "StateDirectory"); stateDir != "/var/lib/"+sd {
		t.Errorf("--state-dir %s is not the StateDirectory=%s (/var/lib/%s)", stateDir, sd, sd)
	}
	if !containsField(u["Service"]["ReadWritePaths"], stateDir) {
		t.Errorf("ReadWritePaths=%v does not include the state dir %s", u["Service"]["ReadWritePaths"], stateDir)
	}
	cfgDir, _ := flagValue(flags, "config-dir")
	if cd := u.get("Service", "ConfigurationDirectory"); cd != "" && cfgDir != "/etc/"+cd {
		t.Errorf("--config-dir %s is not the ConfigurationDirectory=%s", cfgDir, cd)
	}
	for _, e := range u["Service"]["Environment"] {
		k, v, _ := strings.Cut(e, "=")
		if !usage.Env[k] && !pipelineVars(t)[k] {
			t.Errorf("Environment=%s: neither cdpd nor the example pipelines read it", k)
		}
		if k == "CDP_OUT" && !under(v, stateDir) && !containsField(u["Service"]["ReadWritePaths"], v) {
			t.Errorf("CDP_OUT=%s is not writable under ProtectSystem=strict", v)
		}
	}
	want := map[string]string{
		"ExecReload":      "/bin/kill -HUP $MAINPID",
		"Restart":         "on-failure",
		"ProtectSystem":   "strict",
		"NoNewPrivileges": "yes",
		"KillSignal":      "SIGTERM",
	}
	for k, v := range want {
		if got := u.get("Service", k); got != v {
			t.Errorf("cdpd.service %s=%q, want %q", k, got, v)
		}
	}
	if u.get("Service", "DynamicUser") != "yes" && u.get("Service", "User") == "" {
		t.Errorf("cdpd.service runs as root: set DynamicUser=yes or User=")
	}
	// The stop timeout covers the drain (--drain-timeout, default 30 s).
	if ts, err := strconv.Atoi(strings.TrimSuffix(u.get("Service", "TimeoutStopSec"), "s")); err != nil || ts <= 30 {
		t.Errorf("TimeoutStopSec=%q: must exceed the 30 s drain timeout", u.get("Service", "TimeoutStopSec"))
	}

	f := parseUnit(t, filepath.Join(dir, "flowctl.service"))
	fexec := strings.Fields(f.get("Service", "ExecStart"))
	if len(fexec) < 2 || filepath.Base(fexec[0]) != "flowctl" || fexec[1] != "server" {
		t.Fatalf("flowctl.service ExecStart %v: want flowctl server ...", fexec)
	}
	fflags, _ := parseArgs(fexec[2:], map[string]bool{"no-persistence": true})
	checkFlags(t, "flowctl.service ExecStart", fflags, flowctlFlags(t, "server"))
	if db, _ := flagValue(fflags, "db-path"); !under(db, "/var/lib/"+f.get("Service", "StateDirectory")) {
		t.Errorf("flowctl --db-path %s is not in its StateDirectory", db)
	}

	t.Run("systemd-analyze", func(t *testing.T) { systemdAnalyze(t, dir) })
}

func containsField(values []string, s string) bool {
	for _, v := range values {
		for _, f := range strings.Fields(v) {
			if strings.TrimLeft(f, "-+") == s {
				return true
			}
		}
	}
	return false
}

// systemdAnalyze runs `systemd-analyze verify` (any warning about the units fails) and
// `systemd-analyze security --offline` (exposure must stay "OK"); it skips, saying so, where
// systemd-analyze is not installed or cannot run offline.
func systemdAnalyze(t *testing.T, dir string) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd; .ci/run installs it): `systemd-analyze verify` and `security` not run, the static checks of the units ran")
	}
	// verify wants the ExecStart binaries to exist: point the units at stand-ins.
	tmp := t.TempDir()
	for _, name := range []string{"cdpd", "flowctl"} {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, name+".service"))
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.ReplaceAll(string(b), "/usr/local/bin/", tmp+"/"))
		if err := os.WriteFile(filepath.Join(tmp, name+".service"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"cdpd.service", "flowctl.service"} {
		t.Run(name, func(t *testing.T) {
			out, err := run(t, tmp, sa, "verify", "--man=no", "./"+name)
			var complaints []string
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, name) {
					complaints = append(complaints, line)
				}
			}
			if err != nil || len(complaints) > 0 {
				t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
			}
			out, err = run(t, tmp, sa, "security", "--offline=yes", "./"+name)
			m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`).FindStringSubmatch(out)
			if err != nil || m == nil {
				t.Skipf("systemd-analyze security --offline %s not usable here (verify ran): %v\n%s", name, err, lastLines(out, 5))
			}
			if level, _ := strconv.ParseFloat(m[1], 64); level > 2.5 {
				t.Errorf("systemd-analyze security %s: exposure %s %s, want <= 2.5 (hardening lost)\n%s", name, m[1], m[2], out)
			} else {
				t.Logf("systemd-analyze security %s: exposure %s %s", name, m[1], m[2])
			}
		})
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
