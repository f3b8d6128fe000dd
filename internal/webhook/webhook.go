// Package webhook owns cdpd's one webhook delivery, used by the control plane's alert
// notifications (control/alert) and the NotificationDispatcher consumer (host/consumer/stream):
// a JSON body POSTed to a URL with a delivery id in the X-Cdpd-Delivery header that stays the
// same across retries (so a receiver can drop duplicates), retried with capped exponential
// backoff (internal/backoff) on network errors and HTTP 5xx, 408 and 429 up to MaxAttempts;
// other answers are final. Errors name only the URL's host: a webhook's path or query often
// holds a token, so the URL is never quoted in an error (and so never in a log).
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"time"

	"github.com/withobsrvr/cdpd/internal/backoff"
)

// Sender delivers webhooks.
type Sender struct {
	Client      *http.Client   // posts the requests (its Timeout bounds one attempt)
	UserAgent   string         // the User-Agent header
	MaxAttempts int            // attempts of one delivery (>= 1)
	Retry       backoff.Policy // the wait after failed attempt n is Retry.Delay(n)
}

// Delivery is one webhook to deliver.
type Delivery struct {
	URL  string
	ID   string // X-Cdpd-Delivery: the same on every attempt
	Body []byte // JSON
}

// Result is what became of a delivery.
type Result struct {
	Attempts int
	// Err is the last attempt's error (nil when delivered); Canceled is set when ctx ended
	// during a wait between attempts.
	Err      error
	Canceled bool
}

// Deliver posts d until it is accepted (2xx), answered with a final error, MaxAttempts is
// reached or ctx ends. retrying, when not nil, is called before each wait with the failed
// attempt's number, the wait and its error (for logs and metrics).
func (s *Sender) Deliver(ctx context.Context, d Delivery, retrying func(attempt int, wait time.Duration, err error)) Result {
	for attempt := 1; ; attempt++ {
		retry, err := s.post(ctx, d)
		if err == nil {
			return Result{Attempts: attempt}
		}
		if !retry || attempt >= s.MaxAttempts || ctx.Err() != nil {
			return Result{Attempts: attempt, Err: err}
		}
		wait := s.Retry.Delay(attempt)
		if retrying != nil {
			retrying(attempt, wait, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Result{Attempts: attempt, Err: err, Canceled: true}
		case <-t.C:
		}
	}
}

// post makes one attempt; retry says whether a failure is worth another attempt.
func (s *Sender) post(ctx context.Context, d Delivery) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		// The error may quote the URL: say only what kind of problem it is.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return false, fmt.Errorf("building webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.UserAgent)
	req.Header.Set("X-Cdpd-Delivery", d.ID)
	resp, err := s.Client.Do(req)
	if err != nil {
		// *url.Error quotes the whole URL, whose path or query often holds a token: keep
		// only the host in what gets logged.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return true, fmt.Errorf("posting webhook to %s: %w", req.URL.Host, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("webhook answered %s", resp.Status)
	default:
		return false, fmt.Errorf("webhook answered %s (not retried)", resp.Status)
	}
}
