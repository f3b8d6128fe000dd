package control

import (
	"context"

	"google.golang.org/grpc/connectivity"
)

// watchConn follows the connection's state: it reconnects an idle
// connection at once, marks every pipeline unconfirmed when the connection is
// lost and makes every pipeline due when it is back.
func (c *Client) watchConn(ctx context.Context) {
	everReady, lost := false, false
	for {
		s := c.conn.GetState()
		switch s {
		case connectivity.Ready:
			if lost {
				c.reconnected()
			}
			everReady, lost = true, false
		case connectivity.Idle, connectivity.Connecting, connectivity.TransientFailure:
			if everReady && !lost {
				lost = true
				c.connectionLost(s)
			}
			if s == connectivity.Idle {
				c.conn.Connect()
			}
		case connectivity.Shutdown:
			return
		}
		if !c.conn.WaitForStateChange(ctx, s) {
			return
		}
	}
}

func (c *Client) connectionLost(s connectivity.State) {
	c.log.Warn("connection to the control plane lost; pipelines keep running, reconnecting",
		"endpoint", c.cfg.Endpoint, "state", s.String())
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		c.setConfirmed(e, false)
	}
}

func (c *Client) reconnected() {
	c.m.reconnects.Inc()
	c.mu.Lock()
	n := len(c.entries)
	now := c.now()
	for _, e := range c.entries {
		c.dueAt(e, now)
	}
	c.mu.Unlock()
	c.poke()
	c.log.Info("connection to the control plane re-established; refreshing every pipeline",
		"endpoint", c.cfg.Endpoint, "pipelines", n)
}
