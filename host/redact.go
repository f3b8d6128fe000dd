package host

import (
	"log/slog"

	"github.com/withobsrvr/cdpd/internal/redact"
	"github.com/withobsrvr/cdpd/loader"
)

// The host's error path is where secrets are kept out of what a pipeline shows (issue 17):
// every value of a definition that internal/redact calls a secret (what ${VAR} expanded to,
// values of keys that name a secret, URL user names, passwords and query values, connection
// string passwords) is replaced in
//   - each error that leaves a component: failures of the incarnation (lifecycle.fail, so
//     last_error, the restart log and heartbeats), build and start errors (defError, so
//     ApplyError and config_error);
//   - each component's own health reason (the <Name>_status health details);
//   - every log line of the pipeline, the host's and the components' own (Env.Logger).
// Components need not redact anything themselves.

// redactorOf is the redactor of a definition's secrets (nil when it has none).
func redactorOf(def *loader.Pipeline) *redact.Redactor { return redact.New(def.Secrets()...) }

// pipelineLogger is the host's logger for one pipeline: every line redacted, with the
// pipeline attribute.
func (h *Host) pipelineLogger(red *redact.Redactor, name string) *slog.Logger {
	return slog.New(red.Handler(h.log.Handler())).With("pipeline", name)
}
