package file

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
)

// logLines runs a consumer of the given config over ledgers 4..6 (3 records each, none in 5)
// with a JSON logger at level, and returns the log lines.
func logLines(t *testing.T, ctor func(env component.Env) (component.Consumer, error), level slog.Level) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	env := component.Env{Pipeline: "p", Name: "dbg", Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level}))}
	c, err := ctor(env)
	if err != nil {
		t.Fatal(err)
	}
	consumeRange(t, c, 4, 6, 3)
	if st := c.(component.StatsReporter).Stats(); st["ledgers_consumed"] != 3 || st["records_consumed"] != 6 || st["last_ledger"] != 6 {
		t.Errorf("stats %v", st)
	}
	if strings.Contains(buf.String(), "SECRET-PREFIX") {
		t.Errorf("a config value was logged: %s", buf.String())
	}
	var out []map[string]any
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestDebugLogger(t *testing.T) {
	ctor := func(env component.Env) (component.Consumer, error) {
		return component.Construct(NewDebugLogger, map[string]any{"name": "x", "log_prefix": "SECRET-PREFIX", "max_fields": 3}, env)
	}
	lines := logLines(t, ctor, slog.LevelDebug)
	if len(lines) != 6 {
		t.Fatalf("%d lines, want one per record (6)", len(lines))
	}
	l := lines[0]
	if l["msg"] != "record" || l["level"] != "DEBUG" || l["kind"] != "all_types" || l["key"] != "testnet-4-0" ||
		l["field.network"] != "testnet" || l["field.ledger_sequence"] != "4" || l["field.index"] != "0" || l["field.small"] != nil {
		t.Errorf("first line %v", l)
	}
	if l["more_fields"] != float64(21-3) {
		t.Errorf("more_fields %v, want 18", l["more_fields"])
	}
	if lines := logLines(t, ctor, slog.LevelInfo); len(lines) != 0 {
		t.Errorf("at info level DebugLogger logged %v", lines)
	}
	if debugValue(strings.Repeat("é", 60)) != strings.Repeat("é", 50)+"… (truncated)" || debugValue([]string{"a", "b"}) != "array[2 items]" || debugValue(nil) != "null" {
		t.Error("debugValue does not summarise as upstream")
	}
}

func TestLogDebug(t *testing.T) {
	for _, level := range []string{"info", "debug"} {
		t.Run(level, func(t *testing.T) {
			ctor := func(env component.Env) (component.Consumer, error) {
				return component.Construct(NewLogDebug, map[string]any{"log_level": level}, env)
			}
			lines := logLines(t, ctor, slog.LevelDebug)
			var ledgers, records int
			for _, l := range lines {
				switch l["msg"] {
				case "ledger received":
					ledgers++
					if l["ledger"] != float64(5) && l["kind.all_types"] != float64(3) {
						t.Errorf("ledger line %v", l)
					}
				case "record":
					records++
					var r allTypes
					if err := json.Unmarshal([]byte(l["json"].(string)), &r); err != nil || r.NaturalKey() != l["key"] {
						t.Errorf("record line %v: %v", l, err)
					}
				}
			}
			want := 0
			if level == "debug" {
				want = 6
			}
			if ledgers != 3 || records != want {
				t.Errorf("%d ledger lines and %d record lines, want 3 and %d", ledgers, records, want)
			}
		})
	}
	if _, err := component.Construct(NewLogDebug, map[string]any{"log_level": "trace"}, component.Env{}); err == nil {
		t.Error("log_level trace accepted")
	}
}
