// Package control owns cdpd's side of the flowctl protocol: the multiplexed
// client that registers every hosted pipeline with a flowctl control plane
// (flowctl.v1.ControlPlaneService) and heartbeats each one separately over a
// single gRPC connection. The wire types live in control/flowctlv1; the
// facts the client shares with the CLI, the server, the alerts and the daemon
// (FLOWCTL_* environment, TLS choice, "not found" rule, metadata keys, health
// names) in control/contract; the control plane server, TLS helpers and CLI
// live in sub-packages.
//
// # Model
//
// A Client holds one grpc.ClientConn (created with grpc.NewClient, never
// Dial/WithBlock) and one scheduler goroutine owned by Run. Attach hands the
// client a pipeline's Registration and its live Pipeline (metrics + health);
// the scheduler registers it (asynchronously, retried) and then heartbeats it
// every Config.HeartbeatInterval. Each pipeline gets a fixed phase inside the
// interval (a hash of its service id), so 500 pipelines are spread over the
// interval instead of firing together; at most Config.MaxConcurrent RPCs are in
// flight at once. Attach and Detach never wait for the network: when the
// control plane is unreachable pipelines keep running and the client retries.
//
// Heartbeats are cheap to send at scale (500 pipelines at a 1 s interval):
// pipelines whose slots lie within a twentieth of the interval (at most
// 100 ms) of each other go out together, slightly early, so they share the
// wake-ups of the scheduler, its worker goroutines (reused, at most about
// MaxConcurrent) and the connection; each pipeline's previous heartbeat is
// kept so that unchanged metric and detail strings are reused; and
// HeartbeatRequest is marshalled by vtprotobuf's generated code instead of
// protobuf-go's reflection over the map (same encoding, one allocation, sent as
// content-type application/grpc+proto; see BENCHMARKS.md).
//
// A heartbeat carries the pipeline's HealthStatus (StatusProvider.HealthState
// if the pipeline implements it, else IsHealthy -> HEALTHY / UNHEALTHY), its
// metrics as decimal strings (strconv.FormatFloat(v, 'f', -1, 64); NaN and
// ±Inf are not decimals and are left out) and its health details as
// "health.<key>" (values cut at MaxDetailLen bytes, invalid UTF-8 replaced).
// A pipeline whose metrics or health methods panic is reported UNHEALTHY with
// the panic in health.control_error; the daemon is not taken down.
//
// # Service ids
//
// ServiceID maps a pipeline name to the stable component id "cdp-<name>":
// CamelCase is split at word boundaries, everything is lower-cased and every
// run of characters outside [a-z0-9] becomes a single "-" (trimmed at both
// ends), so "ContractEvents" becomes "cdp-contract-events". When several cdpd
// instances share one control plane, the instance name (sanitised the same
// way) is prefixed: ServiceID("eu-1", "ContractEvents") is
// "eu-1-cdp-contract-events".
//
// # Owning the services
//
// A control plane of this module binds every service to the client that registered it
// (control/server's package doc has the rules). The client proves ownership with an owner
// token sent on every call in the gRPC metadata entry contract.OwnerTokenHeader:
// Config.OwnerToken (cdpd keeps one in its state directory, so that a restarted daemon owns
// its services again at once), or a random one for the client's life. When a registration
// answers with another token in connection_info (contract.ConnOwnerToken), the client carries
// that one for the pipeline. Servers that know nothing of tokens (upstream flowctl) ignore the
// header. A heartbeat refused with PermissionDenied (another client registered the id after
// this one went silent) makes the client register again, which the server refuses until the
// other client has been silent for its TTL and then accepts: the service comes back.
//
// # Losing and regaining the control plane
//
// Every RPC uses grpc.WaitForReady(true) and a per-call deadline
// (Config.RPCTimeout), so calls queue while the connection is down instead of
// failing fast. The connection reconnects with capped exponential backoff
// (base 100 ms, factor 1.6, jitter 0.2, capped at Config.BackoffMax, default
// 5 s) and sends keepalive pings after 30 s without traffic, also when no RPC
// is in flight; the server's keepalive enforcement policy must accept that
// (grpc.KeepaliveEnforcementPolicy with MinTime <= 30 s and
// PermitWithoutStream). Failed calls of one pipeline are retried with the
// same capped exponential backoff.
//
// The control plane may come back with an empty registry. Two mechanisms
// bring every pipeline back:
//   - a heartbeat answered "not found" (codes.NotFound, or any code whose
//     message contains "not found", as upstream flowctl answers with
//     codes.Unknown) re-registers that pipeline at once and heartbeats again;
//   - the client watches the connection state; when it becomes READY again
//     after having been lost, every pipeline's next heartbeat is due at once.
//     A server that kept its registry (persistence) answers normally and keeps
//     the original registration time; an empty one answers "not found" and the
//     pipeline is re-registered.
//
// So all pipelines are back within one reconnect backoff plus one round of
// RPCs, well inside one heartbeat interval plus backoff.
//
// # Status codes
//
// Errors are sorted by gRPC status code:
//
//	not found    NotFound, or any code whose message contains "not found":
//	             re-register now (heartbeat), or success (Detach's unregister).
//	retry        Unavailable, DeadlineExceeded, ResourceExhausted, Aborted,
//	             Internal, Unknown, Canceled, DataLoss: transient (server down,
//	             restarting, overloaded, connection dropped mid-call). Retried
//	             with capped exponential backoff. The first failure of an
//	             episode is logged once (warn, with the cause, e.g. a TLS
//	             handshake error) and recovery once; per-pipeline failures are
//	             logged at debug level. Connection loss and re-establishment
//	             are logged by the connection watcher.
//	halt         InvalidArgument, PermissionDenied, Unauthenticated,
//	             Unimplemented, FailedPrecondition, OutOfRange, AlreadyExists:
//	             the server rejects this request as it is (bad id or metadata,
//	             wrong credentials, not a flowctl server). Retrying at once
//	             cannot help, so the error is logged once per pipeline and
//	             code with its cause, and the call is retried only every
//	             Config.BackoffMax for registrations, at the normal interval
//	             for heartbeats (an operator may fix the server side), never
//	             spinning. Recovery is logged.
//
// # Metrics
//
// With Config.Registerer set, the client exports cdpd_control_heartbeats_total,
// cdpd_control_heartbeat_failures_total{code}, cdpd_control_registrations_total,
// cdpd_control_registration_failures_total{code},
// cdpd_control_reregistrations_total (registrations after the server lost a
// pipeline), cdpd_control_reconnects_total, cdpd_control_attached_pipelines,
// cdpd_control_registered_pipelines, cdpd_control_refused_pipelines (pipelines
// whose registration or heartbeat the server answered with an error: registry
// full, permission denied) and cdpd_control_rpc_duration_seconds{method}.
// Client.Registration says, per pipeline, why it is not registered.
//
// # Disabled
//
// With an empty Config.Endpoint (FLOWCTL_ENDPOINT unset) NewClient returns a
// disabled client: no connection, no goroutines, no metrics; Attach and Detach
// are no-ops and Run just waits for its context.
package control
