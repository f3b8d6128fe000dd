package server

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/withobsrvr/cdpd/control/flowctlv1"
)

func TestHeartbeatTTLFor(t *testing.T) {
	for iv, want := range map[time.Duration]time.Duration{
		0:                    DefaultHeartbeatTTL,
		time.Second:          DefaultHeartbeatTTL,
		10 * time.Second:     30 * time.Second, // cdpd's default interval: the default TTL
		30 * time.Second:     90 * time.Second,
		40 * time.Second:     2 * time.Minute,
		-5 * time.Second:     DefaultHeartbeatTTL,
		10*time.Second + 1e6: 30*time.Second + 3e6,
	} {
		if got := HeartbeatTTLFor(iv); got != want {
			t.Errorf("HeartbeatTTLFor(%v) = %v, want %v", iv, got, want)
		}
	}
}

// A service heartbeating every 40 s stays healthy for two minutes under the janitor, with the
// TTL the rule gives for 40 s; under the 30 s default it flaps (the embedded control plane's
// bug). The janitor runs on its own ticker in a synctest bubble: no real time passes.
func TestJanitorKeeps40sHeartbeatsHealthy(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ttl         time.Duration
		wantHealthy bool
	}{
		{"ttl for a 40s interval", HeartbeatTTLFor(40 * time.Second), true},
		{"default ttl", DefaultHeartbeatTTL, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv, err := New(Options{HeartbeatTTL: tc.ttl, JanitorInterval: 10 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				defer srv.Close()
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				wg.Go(func() { _ = srv.Run(ctx) })
				defer func() { cancel(); wg.Wait() }()

				const id = "cdp-slow"
				if _, err := srv.RegisterComponent(ctx, &flowctlv1.RegisterRequest{
					ComponentId: id, Component: &flowctlv1.ComponentInfo{Id: id, Name: "slow"},
				}); err != nil {
					t.Fatal(err)
				}
				wg.Go(func() { // the service: a heartbeat every 40 s, off the janitor's beat
					time.Sleep(5 * time.Second)
					tick := time.NewTicker(40 * time.Second)
					defer tick.Stop()
					for {
						select {
						case <-ctx.Done():
							return
						case <-tick.C:
							if _, err := srv.Heartbeat(ctx, &flowctlv1.HeartbeatRequest{ServiceId: id, Status: healthy}); err != nil {
								t.Errorf("heartbeat: %v", err)
							}
						}
					}
				})
				flapped := false
				for range 2*60 + 1 { // every simulated second for two minutes
					time.Sleep(time.Second)
					synctest.Wait()
					st, err := srv.GetComponentStatus(ctx, &flowctlv1.ComponentStatusRequest{ServiceId: id})
					if err != nil {
						t.Fatal(err)
					}
					if st.GetStatus() != healthy {
						flapped = true
					}
				}
				if flapped == tc.wantHealthy {
					t.Fatalf("TTL %v, heartbeats every 40s: went unhealthy within 2 min = %v, want %v", tc.ttl, flapped, !tc.wantHealthy)
				}
			})
		})
	}
}
