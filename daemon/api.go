package daemon

import (
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/withobsrvr/cdpd/host"
)

// PipelineStatus is one pipeline as GET /api/v1/pipelines shows it. A pipeline that exists only
// as a broken definition (never applied) is listed with status "invalid" and its error.
type PipelineStatus struct {
	Name          string             `json:"name"`
	ServiceID     string             `json:"service_id"`
	File          string             `json:"file"`
	Status        string             `json:"status"`
	Health        string             `json:"health"`
	Generation    int64              `json:"generation"`
	ConfigHash    string             `json:"config_hash"`
	Restarts      int                `json:"restarts"`
	LastError     string             `json:"last_error"`
	ConfigError   string             `json:"config_error,omitempty"`
	UptimeSeconds float64            `json:"uptime_seconds"`
	CurrentLedger uint32             `json:"current_ledger"`
	Checkpoint    uint32             `json:"checkpoint"`
	Metrics       map[string]float64 `json:"metrics"`
	HealthDetails map[string]string  `json:"health_details"`
	Registered    bool               `json:"registered"`
}

// ConfigError is one standing configuration error, as GET /api/v1/errors shows it.
type ConfigError struct {
	File     string `json:"file"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Pipeline string `json:"pipeline,omitempty"`
	Message  string `json:"message"`
}

func (d *daemon) routes() http.Handler {
	mux := http.NewServeMux()
	gatherers := prometheus.Gatherers{d.reg, d.host.Gatherer()}
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-d.ready:
			_, _ = w.Write([]byte("ready\n"))
		default:
			http.Error(w, "initial configuration not applied yet", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /api/v1/pipelines", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, d.pipelineStatuses())
	})
	mux.HandleFunc("GET /api/v1/pipelines/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		for _, s := range d.pipelineStatuses() {
			if s.Name == name {
				writeJSON(w, http.StatusOK, s)
				return
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no pipeline named " + name})
	})
	mux.HandleFunc("GET /api/v1/errors", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, d.configErrors())
	})
	mux.HandleFunc("POST /api/v1/reload", func(w http.ResponseWriter, _ *http.Request) {
		d.watcher.Rescan()
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "rescan requested"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	writeIndentedJSON(w, v)
}

func (d *daemon) configErrors() []ConfigError {
	out := []ConfigError{}
	for _, e := range d.watcher.Errors() {
		out = append(out, ConfigError{File: e.File, Line: e.Line, Column: e.Column, Pipeline: e.Pipeline, Message: e.Error()})
	}
	return out
}

func (d *daemon) pipelineStatuses() []PipelineStatus {
	d.mu.Lock()
	applyErrs := make(map[string]applyError, len(d.applyErrs))
	for k, v := range d.applyErrs {
		applyErrs[k] = v
	}
	d.mu.Unlock()
	cfgErrs := map[string]ConfigError{}
	for _, e := range d.configErrors() {
		if e.Pipeline != "" {
			cfgErrs[e.Pipeline] = e
		}
	}
	out := []PipelineStatus{}
	seen := map[string]bool{}
	for _, p := range d.host.Pipelines() {
		s := d.status(p)
		if e, ok := cfgErrs[s.Name]; ok {
			s.ConfigError = e.Message
		} else if e, ok := applyErrs[s.Name]; ok {
			s.ConfigError = e.msg
		} else if holder := d.idConflict(s.Name); holder != "" {
			s.ConfigError = fmt.Sprintf("service id %s is already used by pipeline %s; rename one of them", s.ServiceID, holder)
		}
		seen[s.Name] = true
		out = append(out, s)
	}
	// Pipelines that exist only as a broken definition, or whose first version failed to
	// start, are listed too, so that the operator sees why they do not run.
	unhosted := func(name, file, status, msg string) {
		seen[name] = true
		out = append(out, PipelineStatus{Name: name, ServiceID: d.serviceID(name), File: file,
			Status: status, Health: "unhealthy", LastError: msg, ConfigError: msg,
			Metrics: map[string]float64{}, HealthDetails: map[string]string{}})
	}
	for name, e := range cfgErrs {
		if !seen[name] {
			unhosted(name, e.File, "invalid", e.Message)
		}
	}
	for name, e := range applyErrs {
		if !seen[name] {
			unhosted(name, e.file, "failed", e.msg)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (d *daemon) status(p *host.Pipeline) PipelineStatus {
	info := p.Info()
	var uptime float64
	if !info.StartedAt.IsZero() {
		uptime = time.Since(info.StartedAt).Seconds()
	}
	id := d.serviceID(info.Name)
	return PipelineStatus{
		Name: info.Name, ServiceID: id, File: info.File, Status: info.Status, Health: p.HealthState(),
		Generation: info.Generation, ConfigHash: info.ConfigHash, Restarts: info.Restarts,
		LastError: info.LastError, UptimeSeconds: uptime, CurrentLedger: info.CurrentLedger,
		Checkpoint: info.Checkpoint, Metrics: p.GetMetrics(), HealthDetails: p.GetHealthDetails(),
		Registered: d.client.Registered(id),
	}
}
