package redistest

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func client(s *Server) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true, MaxRetries: -1})
}

// The server answers on loopback, keeps its data across Stop/StartAgain, and is gone after
// Kill.
func TestStartStopStartAgain(t *testing.T) {
	s := Start(t)
	ctx := context.Background()
	c := client(s)
	defer c.Close()
	if err := c.Set(ctx, "k", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered by a stopped server")
	}
	if err := s.StartAgain(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v1" {
		t.Fatalf("after a restart GET k = %q, %v; want v1 (the append-only file keeps data)", got, err)
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered by a killed server")
	}
}

// Two servers get two ports.
func TestTwoServers(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("both servers on %s", a.Addr())
	}
	if a.URL(3) != "redis://"+a.Addr()+"/3" {
		t.Fatalf("URL(3) = %s", a.URL(3))
	}
}
