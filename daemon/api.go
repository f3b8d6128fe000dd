package daemon

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/withobsrvr/cdpd/host"
	"github.com/withobsrvr/cdpd/loader"
)

// PipelineStatus is one pipeline as GET /api/v1/pipelines shows it: the host's snapshot of it
// (host.Snapshot) plus what the daemon knows (pipelineStatus). A pipeline whose first version
// the host refused is listed as "failed" with the error; one that exists only as a definition
// the loader rejected is listed as "invalid" with its error.
type PipelineStatus struct {
	Name        string `json:"name"`
	ServiceID   string `json:"service_id"`
	File        string `json:"file"`
	Status      string `json:"status"`
	Health      string `json:"health"`
	Generation  int64  `json:"generation"`
	ConfigHash  string `json:"config_hash"`
	Restarts    int    `json:"restarts"`
	LastError   string `json:"last_error"`
	ConfigError string `json:"config_error,omitempty"`
	// ConfigWarnings: config keys a component does not know (ignored), no consumers; each
	// names file:line:column. Never an error unless cdpd runs with --strict.
	ConfigWarnings []string           `json:"config_warnings,omitempty"`
	UptimeSeconds  float64            `json:"uptime_seconds"`
	CurrentLedger  uint32             `json:"current_ledger"`
	Checkpoint     uint32             `json:"checkpoint"`
	Metrics        map[string]float64 `json:"metrics"`
	HealthDetails  map[string]string  `json:"health_details"`
	Registered     bool               `json:"registered"`
	// RegistrationError says why the pipeline is not registered with the control plane: a
	// service id another pipeline holds, a registration the control plane refused (registry
	// full, permission denied), a control plane that cannot be reached.
	RegistrationError string `json:"registration_error,omitempty"`
	// Progress is a bounded pipeline's progress through start_ledger..end_ledger (done,
	// total, percent, rate, eta_seconds); absent when the pipeline follows the tip.
	Progress *host.Progress `json:"progress,omitempty"`
	// AssignedShard is the shard (replica) that runs the pipeline, when the daemon is sharded
	// (--shard-count above 1). A pipeline another shard runs is listed with status
	// other_shard and never started here.
	AssignedShard *int `json:"assigned_shard,omitempty"`
	// Reader is the reader the pipeline's source reads through (storage sources): the shared
	// reader's id (as in cdpd_reader_*), whether the pipeline is in the shared stream
	// ("shared"), on a reader of its own behind it ("catching_up") or reads alone ("own",
	// share: false), and the reader's figures.
	Reader *ReaderStatus `json:"reader,omitempty"`
}

// ReaderStatus is a pipeline's reader as the API shows it (host.Snapshot.Reader).
type ReaderStatus struct {
	ID               string `json:"id,omitempty"`
	Datastore        string `json:"datastore,omitempty"`
	Mode             string `json:"mode"`
	Subscribers      int    `json:"subscribers"`
	ObjectsRead      int64  `json:"objects_read"`
	BytesRead        int64  `json:"bytes_read"`
	LedgersRead      int64  `json:"ledgers_read"`
	DecodesPerformed int64  `json:"decodes_performed"`
	DecodesShared    int64  `json:"decodes_shared"`
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
	if d.cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/{$}", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/{profile}", pprof.Index) // heap, goroutine, allocs, block, mutex, ...
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	}
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
		writeJSON(w, http.StatusOK, append(d.configErrors(), d.registrationErrors()...))
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
	_ = printJSON(w, v)
}

func (d *daemon) configErrors() []ConfigError {
	out := []ConfigError{}
	for _, e := range d.watcher.Errors() {
		out = append(out, configError(e))
	}
	return out
}

func (d *daemon) pipelineStatuses() []PipelineStatus {
	fileErrs := map[string]ConfigError{} // pipeline -> the watcher's standing error about it
	for _, e := range d.configErrors() {
		if e.Pipeline != "" {
			fileErrs[e.Pipeline] = e
		}
	}
	out := []PipelineStatus{}
	for _, p := range d.host.Pipelines() {
		s := d.pipelineStatus(p.Snapshot(), fileErrs[p.Name()].Message)
		delete(fileErrs, s.Name)
		out = append(out, s)
	}
	// Pipelines other shards run: listed, never started; pipelines of this shard another
	// instance still runs: listed as waiting.
	for _, s := range append(d.foreignStatuses(), d.waitingStatuses()...) {
		delete(fileErrs, s.Name)
		out = append(out, s)
	}
	// Pipelines that exist only as a broken definition are listed too, so that the operator
	// sees why they do not run.
	for name, e := range fileErrs {
		out = append(out, PipelineStatus{Name: name, ServiceID: d.serviceID(name), File: e.File,
			Status: "invalid", Health: "unhealthy", LastError: e.Message, ConfigError: e.Message,
			Metrics: map[string]float64{}, HealthDetails: map[string]string{}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// pipelineStatus is the host's snapshot of a pipeline plus what only the daemon knows: its
// service id, whether it is registered (and if not, why), and the config error it shows. That
// is the rejection of its file the host reports (host.Info.ConfigRejected: the loader's error
// about it in its file or about the whole file, else the change the host refused), else the
// watcher's standing error about its name in another file (fileErr), else a service id that
// another pipeline holds.
func (d *daemon) pipelineStatus(s host.Snapshot, fileErr string) PipelineStatus {
	id := d.serviceID(s.Name)
	cfgErr := s.ConfigRejected
	if cfgErr == "" {
		cfgErr = fileErr
	}
	holder := d.idConflict(s.Name)
	if cfgErr == "" && holder != "" {
		cfgErr = fmt.Sprintf("service id %s is already used by pipeline %s; rename one of them", id, holder)
	}
	ps := PipelineStatus{
		Name: s.Name, ServiceID: id, File: s.File, Status: s.Status, Health: s.Health,
		Generation: s.Generation, ConfigHash: s.ConfigHash, Restarts: s.Restarts,
		LastError: s.LastError, ConfigError: cfgErr, ConfigWarnings: s.Warnings, UptimeSeconds: s.Uptime.Seconds(),
		CurrentLedger: s.CurrentLedger, Checkpoint: s.Checkpoint, Metrics: s.Metrics,
		HealthDetails: s.HealthDetails, Registered: holder == "" && d.client.Registered(id),
		RegistrationError: d.registrationError(s.Name), Progress: s.Progress,
	}
	if d.cfg.Shard.Sharded() {
		k := d.cfg.Shard.Index
		ps.AssignedShard = &k
	}
	if r := s.Reader; r != nil {
		ps.Reader = &ReaderStatus{
			ID: r.Reader, Datastore: r.Datastore, Mode: r.Mode, Subscribers: r.Subscribers,
			ObjectsRead: r.ObjectsRead, BytesRead: r.BytesRead, LedgersRead: r.LedgersRead,
			DecodesPerformed: r.DecodesPerformed, DecodesShared: r.DecodesShared,
		}
	}
	return ps
}

// configError is one loader error (or warning) as the API and `cdpd validate --json` show it.
func configError(e *loader.Error) ConfigError {
	return ConfigError{File: e.File, Line: e.Line, Column: e.Column, Pipeline: e.Pipeline, Message: e.Error()}
}

// configWarnings counts the loader's warnings about the applied definitions.
func (d *daemon) configWarnings() int {
	if d.host == nil {
		return 0
	}
	n := 0
	for _, p := range d.host.Pipelines() {
		n += len(p.Definition().Warnings)
	}
	return n
}
