// Package contract owns the facts that every party to cdpd's use of the flowctl protocol
// shares beyond the wire types of control/flowctlv1: the client (package control), the flowctl
// CLI (control/cli), the control plane (control/server), its alert rules (control/alert) and
// the daemon. Each fact is defined here once:
//
//   - the FLOWCTL_* environment variables and the one reader of them (ReadEnv);
//   - the one TLS choice of every client connection (TLSFiles.DialOption: TLS as soon as any
//     TLS file is given, plaintext otherwise);
//   - the one "not found" rule (IsNotFound), which also matches upstream flowctl's answers;
//   - the registration metadata keys and the service type of cdpd pipelines (cdp-pipeline);
//   - the "health." prefix of health details in heartbeat metrics, the detail keys that carry
//     an error, and the health-state names (ParseState, StatusName);
//   - the pipeline metric names the CLI reads.
package contract

import (
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control/tlsutil"
)

// Environment variables operators already use for flowctl (upstream's names).
const (
	EnvEndpoint = "FLOWCTL_ENDPOINT" // host:port of the control plane
	EnvTLSCert  = "FLOWCTL_TLS_CERT" // client certificate (mutual TLS)
	EnvTLSKey   = "FLOWCTL_TLS_KEY"  // its key
	EnvTLSCA    = "FLOWCTL_TLS_CA"   // CA that verifies the server
)

// TLSFiles are a client's TLS files. Any of them set means TLS: CA verifies the server
// (system roots when empty); Cert and Key (both or neither) are the client certificate for
// mutual TLS.
type TLSFiles struct {
	Cert, Key, CA string
}

// Enabled reports whether any TLS file is set.
func (f TLSFiles) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// DialOption is the transport of every flowctl client connection: TLS with f when any file is
// set, plaintext otherwise.
func (f TLSFiles) DialOption() (grpc.DialOption, error) {
	if !f.Enabled() {
		return grpc.WithTransportCredentials(insecure.NewCredentials()), nil
	}
	conf, err := tlsutil.ClientConfig(f.Cert, f.Key, f.CA)
	if err != nil {
		return nil, fmt.Errorf("configuring TLS for the flowctl connection: %w", err)
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(conf)), nil
}

// Env is the flowctl connection the environment names.
type Env struct {
	// Endpoint is FLOWCTL_ENDPOINT without surrounding spaces; empty when unset.
	Endpoint string
	// TLS are FLOWCTL_TLS_CERT, FLOWCTL_TLS_KEY and FLOWCTL_TLS_CA.
	TLS TLSFiles
}

// ReadEnv reads the FLOWCTL_* variables with getenv (os.Getenv in the binaries; nil reads
// nothing). It is the only reader of them.
func ReadEnv(getenv func(string) string) Env {
	if getenv == nil {
		return Env{}
	}
	return Env{
		Endpoint: strings.TrimSpace(getenv(EnvEndpoint)),
		TLS:      TLSFiles{Cert: getenv(EnvTLSCert), Key: getenv(EnvTLSKey), CA: getenv(EnvTLSCA)},
	}
}

// IsNotFound reports whether err is a control plane's answer for a service id it does not
// know: codes.NotFound (cdpd's server), or any other error status whose message contains
// "not found" (upstream flowctl answers codes.Unknown "service ... not found").
func IsNotFound(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() == codes.OK {
		return false
	}
	return st.Code() == codes.NotFound || strings.Contains(strings.ToLower(st.Message()), "not found")
}
