package control

import (
	"container/heap"
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/control/flowctlv1"
	"github.com/withobsrvr/cdpd/internal/failpoint"
)

// exchange is a snapshot of what one job needs, taken under Client.mu.
type exchange struct {
	gen          uint64
	reg          Registration
	p            Pipeline
	needRegister bool
	hb           *hbCache
	token        string // the owner token in force ("" = the client's own)
}

// result is what a job did.
type result struct {
	registered bool   // a RegisterComponent call succeeded
	token      string // the owner token it returned
	lost       bool   // a heartbeat was answered "not found"
	err        error
	op         string // "register" or "heartbeat": the call that failed
}

// run registers the pipeline when needed and heartbeats it; a heartbeat
// answered "not found" re-registers it and heartbeats again.
func (c *Client) run(ctx context.Context, x exchange) result {
	var res result
	if x.needRegister {
		tok, err := c.register(ctx, x)
		if err != nil {
			return result{err: err, op: "register"}
		}
		res.registered, res.token, x.token = true, tok, tok
	}
	err := c.heartbeat(ctx, x)
	if err != nil && contract.IsNotFound(err) && !res.registered {
		res.lost = true
		c.log.Info("control plane lost the pipeline; re-registering",
			"pipeline", x.reg.Name, "service_id", x.reg.ServiceID)
		tok, rerr := c.register(ctx, x)
		if rerr != nil {
			res.err, res.op = rerr, "register"
			return res
		}
		res.registered, res.token, x.token = true, tok, tok
		err = c.heartbeat(ctx, x)
	}
	if err != nil {
		res.err, res.op = err, "heartbeat"
	}
	return res
}

// finish records a job's result and queues e again; c.mu held.
func (c *Client) finish(ctx context.Context, e *entry, x exchange, res result) {
	e.running, e.cancel = false, nil
	if e.removed {
		return
	}
	now := c.now()
	var logger *slog.Logger // built when needed: most exchanges log nothing
	log := func() *slog.Logger {
		if logger == nil {
			logger = c.log.With("pipeline", x.reg.Name, "service_id", x.reg.ServiceID)
		}
		return logger
	}
	if res.lost {
		e.lost = true
	}
	if res.registered {
		c.m.registrations.Inc()
		if e.lost {
			c.m.reregistrations.Inc()
			e.lost = false
		}
		e.everRegistered = true
		e.token = res.token
		if x.gen == e.gen {
			e.needRegister = false
		}
		if !res.lost {
			log().Info("pipeline registered with the control plane")
		}
	}
	if e.lost {
		e.needRegister = true
	}
	switch {
	case x.gen != e.gen:
		// Re-attached with a new registration meanwhile: register that now.
		e.needRegister = true
		e.next = now
	case res.err == nil:
		c.setConfirmed(e, true)
		c.setRegErr(e, "", false)
		e.failures = 0
		if c.failing {
			c.failing = false
			c.log.Info("control plane calls succeed again", "endpoint", c.cfg.Endpoint)
		}
		if e.haltCode != codes.OK {
			log().Info("control plane accepts the pipeline again")
			e.haltCode = codes.OK
		}
		e.next = c.slotAfter(e.next, now, e.phase)
	case ctx.Err() != nil:
		// Run is stopping (Detach returned above): nothing to record.
		e.next = now
	default:
		c.setConfirmed(e, false)
		e.failures++
		code := status.Code(res.err)
		if res.op == "register" || isHalt(code) {
			c.setRegErr(e, res.op+": "+code.String()+": "+status.Convert(res.err).Message(), answered(code))
		}
		if res.op == "heartbeat" && contract.IsNotFound(res.err) {
			e.needRegister, e.lost = true, true // lost again right after registering
		}
		if res.op == "heartbeat" && code == codes.PermissionDenied {
			// Another client holds the id: register again, which takes it over once that
			// client has been silent for the control plane's TTL (and is refused until then).
			e.needRegister = true
		}
		if isHalt(code) {
			if e.haltCode != code {
				log().Error("control plane rejects the pipeline; retrying slowly",
					"call", res.op, "code", code.String(), "err", res.err, "retry_every", c.cfg.BackoffMax)
				e.haltCode = code
			}
			if res.op == "heartbeat" {
				e.next = c.nextSlot(now, e.phase) // never faster than normal heartbeats
			} else {
				e.next = now.Add(c.cfg.BackoffMax)
			}
		} else {
			if !c.failing {
				// Once per episode for the whole client: during an outage every
				// pipeline fails alike. The error names the cause (e.g. the TLS
				// handshake failure behind "latest balancer error").
				c.failing = true
				log().Warn("control plane call failed; pipelines keep running, retrying with backoff",
					"call", res.op, "code", code.String(), "err", res.err)
			}
			log().Debug("control plane call failed; retrying",
				"call", res.op, "code", code.String(), "attempt", e.failures, "err", res.err)
			e.next = now.Add(c.backoff(e.failures))
		}
	}
	if e.dueNow {
		e.dueNow = false
		e.next = now
	}
	heap.Push(&c.queue, e)
}

// register registers the pipeline and returns the owner token to carry from now on: the one
// the control plane returned (contract.ConnOwnerToken), else the one it was sent.
func (c *Client) register(ctx context.Context, x exchange) (string, error) {
	reg := x.reg
	ctx, cancel := context.WithTimeout(c.withOwner(ctx, x.token), c.cfg.RPCTimeout)
	defer cancel()
	start := time.Now()
	resp, err := c.api.RegisterComponent(ctx, &flowctlv1.RegisterRequest{
		ComponentId: reg.ServiceID,
		Component: &flowctlv1.ComponentInfo{
			Id:          reg.ServiceID,
			Name:        reg.Name,
			Description: reg.Description,
			Version:     reg.Version,
			Type:        flowctlv1.ComponentType_COMPONENT_TYPE_UNSPECIFIED,
			Metadata:    reg.Metadata,
		},
	})
	c.m.registerDuration().Observe(time.Since(start).Seconds())
	if err != nil {
		c.m.registrationFailures.WithLabelValues(status.Code(err).String()).Inc()
		return "", err
	}
	if tok := resp.GetConnectionInfo()[contract.ConnOwnerToken]; tok != "" && len(tok) <= contract.MaxOwnerTokenLen {
		return tok, nil
	}
	return x.token, nil
}

func (c *Client) heartbeat(ctx context.Context, x exchange) error {
	req := x.hb.build(x.reg.ServiceID, x.p, c.log, x.reg.Name)
	ctx, cancel := context.WithTimeout(c.withOwner(ctx, x.token), c.cfg.RPCTimeout)
	defer cancel()
	start := time.Now()
	failpoint.Inject(failpoint.HeartbeatBeforeSend)
	// Invoke has marshalled req when it returns: x.hb may reuse its map.
	_, err := c.api.Heartbeat(ctx, req, c.hbCodec)
	c.m.heartbeatDuration().Observe(time.Since(start).Seconds())
	if err != nil {
		c.m.heartbeatFailures.WithLabelValues(status.Code(err).String()).Inc()
		return err
	}
	failpoint.Inject(failpoint.HeartbeatAfterSend)
	c.m.heartbeats.Inc()
	return nil
}

// answered reports whether a failed call's code is the control plane's answer (a refusal:
// registry full, permission, an id it will not take) rather than the call not reaching it.
func answered(code codes.Code) bool {
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return false
	}
	return true
}

// setRegErr records why e is not registered (err "" clears it) and keeps the
// refused-pipelines gauge in step; c.mu held.
func (c *Client) setRegErr(e *entry, err string, refused bool) {
	refused = refused && err != ""
	if e.refused != refused {
		if refused {
			c.refused++
		} else {
			c.refused--
		}
		c.m.refused.Set(float64(c.refused))
	}
	e.regErr, e.refused = err, refused
}

// isHalt reports whether a code means the server rejects the request as it
// is, so that retrying soon cannot help (see the package doc).
func isHalt(code codes.Code) bool {
	switch code {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated,
		codes.Unimplemented, codes.FailedPrecondition, codes.OutOfRange, codes.AlreadyExists:
		return true
	}
	return false
}
