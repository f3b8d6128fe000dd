package webhook

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/withobsrvr/cdpd/internal/backoff"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// receiver answers with the statuses in turn (then 200) and records every request.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	ids      []string
	bodies   []string
	agents   []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, req.Header.Get("X-Cdpd-Delivery"))
	r.bodies = append(r.bodies, string(b))
	r.agents = append(r.agents, req.Header.Get("User-Agent"))
	code := http.StatusOK
	if len(r.statuses) > 0 {
		code, r.statuses = r.statuses[0], r.statuses[1:]
	}
	w.WriteHeader(code)
}

func sender(attempts int) *Sender {
	return &Sender{Client: &http.Client{Timeout: 5 * time.Second}, UserAgent: "test-agent", MaxAttempts: attempts,
		Retry: backoff.Policy{Base: time.Millisecond, Max: 2 * time.Millisecond, Factor: 2}}
}

// 5xx, 408 and 429 are retried with the same delivery id until a 2xx; the retry callback sees
// each failed attempt.
func TestRetriesUntilAccepted(t *testing.T) {
	rcv := &receiver{statuses: []int{500, 408, 429}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	var retried []int
	res := sender(5).Deliver(context.Background(), Delivery{URL: srv.URL + "/hook", ID: "d-1", Body: []byte(`{"a":1}`)},
		func(attempt int, wait time.Duration, err error) { retried = append(retried, attempt) })
	if res.Err != nil || res.Attempts != 4 {
		t.Fatalf("result %+v, want delivered on attempt 4", res)
	}
	if strings.Join(rcv.ids, ",") != "d-1,d-1,d-1,d-1" || rcv.bodies[3] != `{"a":1}` || rcv.agents[0] != "test-agent" {
		t.Fatalf("requests: ids %v bodies %v agents %v", rcv.ids, rcv.bodies, rcv.agents)
	}
	if len(retried) != 3 || retried[2] != 3 {
		t.Fatalf("retry callbacks %v", retried)
	}
}

// Other 4xx answers are final; a failing webhook is given up after MaxAttempts.
func TestFinalAnswersAndMaxAttempts(t *testing.T) {
	rcv := &receiver{statuses: []int{404}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	res := sender(5).Deliver(context.Background(), Delivery{URL: srv.URL, ID: "x"}, nil)
	if res.Err == nil || res.Attempts != 1 || !strings.Contains(res.Err.Error(), "not retried") {
		t.Fatalf("404: %+v", res)
	}
	rcv2 := &receiver{statuses: []int{503, 503, 503, 503}}
	srv2 := httptest.NewServer(rcv2)
	defer srv2.Close()
	res = sender(3).Deliver(context.Background(), Delivery{URL: srv2.URL, ID: "y"}, nil)
	if res.Err == nil || res.Attempts != 3 || len(rcv2.ids) != 3 {
		t.Fatalf("503 thrice: %+v after %d requests", res, len(rcv2.ids))
	}
}

// Errors name the host only, never the path or query of the URL.
func TestErrorsDoNotQuoteTheURL(t *testing.T) {
	srv := httptest.NewServer(&receiver{})
	url := srv.URL + "/hooks/SECRET-TOKEN?key=SECRET-KEY"
	srv.Close() // nothing listens: every attempt fails to connect
	res := sender(2).Deliver(context.Background(), Delivery{URL: url, ID: "z"}, nil)
	if res.Err == nil || res.Attempts != 2 {
		t.Fatalf("result %+v", res)
	}
	if strings.Contains(res.Err.Error(), "SECRET") || !strings.Contains(res.Err.Error(), "127.0.0.1") {
		t.Fatalf("error %q: want the host and no path or query", res.Err)
	}
	res = sender(2).Deliver(context.Background(), Delivery{URL: "http://h/\x7fSECRET", ID: "z"}, nil)
	if res.Err == nil || strings.Contains(res.Err.Error(), "SECRET") {
		t.Fatalf("bad URL: %v", res.Err)
	}
}

// A context that ends during a wait ends the delivery, marked Canceled.
func TestCanceledDuringWait(t *testing.T) {
	srv := httptest.NewServer(&receiver{statuses: []int{500, 500, 500}})
	defer srv.Close()
	s := sender(10)
	s.Retry = backoff.Policy{Base: time.Hour, Max: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	res := s.Deliver(ctx, Delivery{URL: srv.URL, ID: "c"}, func(int, time.Duration, error) { cancel() })
	if !res.Canceled || res.Err == nil || res.Attempts != 1 {
		t.Fatalf("result %+v, want canceled after attempt 1", res)
	}
}
