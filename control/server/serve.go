package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/stats"
)

// GracefulStopTimeout bounds how long Serve waits for in-flight RPCs at shutdown before it
// closes the remaining connections.
const GracefulStopTimeout = 5 * time.Second

// NewGRPCServer returns a grpc.Server that serves s: TLS when tlsConf is not nil, a receive
// limit that fits every valid request, InvalidArgument for a request that does not decode
// (invalid UTF-8, malformed protobuf; codec.go), keepalive enforcement that accepts clients pinging
// every 10 s or more (also without active RPCs), connection counting (Connections) and the
// services of Register. Stop it with GracefulStop.
func NewGRPCServer(s *Server, tlsConf *tls.Config) *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    time.Minute, // ping idle clients, to notice dead peers
			Timeout: 20 * time.Second,
		}),
		grpc.StatsHandler(connCounter{s}),
	}
	// Requests that do not decode are InvalidArgument, not Internal (codec.go).
	opts = append(opts, newRequestCodec().options()...)
	if tlsConf != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsConf)))
	}
	g := grpc.NewServer(opts...)
	s.Register(g)
	return g
}

// GracefulStop turns s's health service NOT_SERVING and stops g gracefully: in-flight RPCs
// get GracefulStopTimeout, then the remaining connections are closed. It returns when g has
// stopped.
func GracefulStop(s *Server, g *grpc.Server) {
	s.health.Shutdown()
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	t := time.NewTimer(GracefulStopTimeout)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		g.Stop()
		<-stopped
	}
}

// Serve serves s on lis until ctx is done: the grpc.Server of NewGRPCServer, and Run. On ctx
// done the server stops with GracefulStop. Serve closes lis but not s: call s.Close
// afterwards. Serve a Server once. (control/plane assembles the whole control plane: this
// server, alerts and /metrics.)
func Serve(ctx context.Context, lis net.Listener, s *Server, tlsConf *tls.Config) error {
	g := NewGRPCServer(s, tlsConf)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- s.Run(ctx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- g.Serve(lis) }()
	s.log.Info("control plane serving", "address", lis.Addr().String(), "tls", tlsConf != nil,
		"mtls", tlsConf != nil && tlsConf.ClientCAs != nil)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-serveDone:
		serveDone = nil
		cancel()
	}
	GracefulStop(s, g)
	if serveDone != nil {
		serveErr = <-serveDone
	}
	runErr := <-runDone
	if serveErr != nil && !errors.Is(serveErr, grpc.ErrServerStopped) {
		return errors.Join(fmt.Errorf("serving control plane: %w", serveErr), runErr)
	}
	return runErr
}

// connCounter counts open client connections (Server.Connections).
type connCounter struct{ s *Server }

func (c connCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (c connCounter) HandleRPC(context.Context, stats.RPCStats)                         {}
func (c connCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (c connCounter) HandleConn(_ context.Context, st stats.ConnStats) {
	switch st.(type) {
	case *stats.ConnBegin:
		c.s.conns.Add(1)
	case *stats.ConnEnd:
		c.s.conns.Add(-1)
	}
}
