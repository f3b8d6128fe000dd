package host

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/internal/testutil"
	"github.com/withobsrvr/cdpd/loader"
)

// leakyConfig is the config of the Leaky processor: it shows every value it was given.
type leakyConfig struct {
	Password string `mapstructure:"password"`
	URL      string `mapstructure:"url"`
	Note     string `mapstructure:"note"`
	FailAt   uint32 `mapstructure:"fail_at"` // Process fails on this ledger (0: never)
}

// leakyProcessor quotes its config values in its log lines, its health reason and its error,
// as careless components (and the libraries they call) do.
type leakyProcessor struct {
	cfg leakyConfig
	log *slog.Logger
}

func (c leakyConfig) all() string { return c.Password + " " + c.URL + " " + c.Note }

func (p *leakyProcessor) Process(_ context.Context, l *ledger.Ledger, in []component.Record) ([]component.Record, error) {
	p.log.Warn("talking to "+p.cfg.URL, "password", p.cfg.Password, "err", fmt.Errorf("note %s", p.cfg.Note))
	if l.Sequence() == p.cfg.FailAt {
		return nil, fmt.Errorf("request failed: %s", p.cfg.all())
	}
	return in, nil
}

func (p *leakyProcessor) Health() string { return "degraded: " + p.cfg.all() }

// TestHostRedactsSecrets (issue 17 item 1): whatever a component puts in its errors, health
// reason and log lines, the host shows none of the definition's secrets: values ${VAR}
// expanded to, values of secret keys, URL user names, passwords and query values.
func TestHostRedactsSecrets(t *testing.T) {
	secrets := []string{"pw-Secret-123", "usr-N4me", "p4ss-W0rd", "qtok-777x", "exp4nded-Value"}
	l := newLab()
	var logs bytes.Buffer
	var mu sync.Mutex
	h := newTestHost(t, l, func(o *Options) {
		r := l.registry(t)
		if err := r.Add(component.ProcessorSpec("Leaky", "quotes its config everywhere", func(c *leakyConfig, env component.Env) (component.Processor, error) {
			return &leakyProcessor{cfg: *c, log: env.Logger}, nil
		})); err != nil {
			t.Fatal(err)
		}
		o.Registry = r
		o.Logger = slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &logs}, nil))
	})
	leaky := func(failAt uint32) loader.Component {
		return comp_("Leaky", "password", "pw-Secret-123", "url", "https://usr-N4me:p4ss-W0rd@rpc.example.org/?token=qtok-777x",
			"note", "exp4nded-Value", "fail_at", failAt)
	}
	healthy := def("healthy", comp_("MemSource", "start_ledger", first, "end_ledger", first+1000), procs(leaky(0)), procs(comp_("Record")))
	failing := def("failing", comp_("MemSource", "start_ledger", first), procs(leaky(first+1)), procs(comp_("Record")))
	for _, d := range []*loader.Pipeline{healthy, failing} {
		d.Expanded = loader.Expanded{"NOTE": "exp4nded-Value"}
		apply(t, h, loader.Add, d)
	}
	pf, _ := h.Get("failing")
	ph, _ := h.Get("healthy")
	// A restarted incarnation that handles a ledger before failing again clears last_error for
	// that moment ("recovered"): take it while it is set.
	var lastErr string
	testutil.Eventually(t, waitLong, "failing restarted after its error", func() bool {
		lastErr = pf.Info().LastError
		return len(pf.RestartLog()) > 0 && lastErr != ""
	})
	testutil.Eventually(t, waitLong, "healthy ran", func() bool { return ph.Info().CurrentLedger > first })

	shown := map[string]string{
		"last_error":          lastErr,
		"restart log":         fmt.Sprint(pf.RestartLog()),
		"health details":      fmt.Sprint(ph.GetHealthDetails(), pf.GetHealthDetails()),
		"snapshot of healthy": fmt.Sprintf("%+v", ph.Snapshot()),
	}
	mu.Lock()
	shown["log"] = logs.String()
	mu.Unlock()
	for where, text := range shown {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s shows the secret %q: %s", where, s, text)
			}
		}
	}
	if !strings.Contains(lastErr, "request failed") || !strings.Contains(lastErr, "${NOTE}") {
		t.Errorf("last_error lost the cause or the variable name: %s", lastErr)
	}
	if d := ph.GetHealthDetails()["Leaky_status"]; !strings.HasPrefix(d, "degraded: [REDACTED]") {
		t.Errorf("Leaky_status = %q", d)
	}
	if !strings.Contains(shown["log"], "talking to https://") {
		t.Errorf("the component's log lines are missing:\n%s", shown["log"])
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
