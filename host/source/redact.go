package source

import (
	"github.com/withobsrvr/cdpd/internal/redact"
)

// newRedactor is the redactor of a source's own secrets (an RPC source's Authorization value,
// the user name, password and query of its URLs): the SDK's and the HTTP client's errors quote
// the URL they failed on, and a server may echo what it was sent. The host redacts every
// pipeline's secrets again where errors and log lines leave a component (host/redact.go); this
// keeps the source's errors clean when it runs outside a host as well.
func newRedactor(secrets []string) *redact.Redactor {
	s := make([]redact.Secret, len(secrets))
	for i, v := range secrets {
		s[i] = redact.Secret{Value: v}
	}
	return redact.New(s...)
}
