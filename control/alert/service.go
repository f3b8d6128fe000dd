package alert

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/withobsrvr/cdpd/control/cdpdv1"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// maxFor bounds for_seconds (30 days): longer is surely a mistake in units.
const maxFor = 30 * 24 * 3600

// validate checks a rule as a client sent it and parses its condition.
func validate(a *cdpdv1.Alert) (Condition, error) {
	if a.GetId() != "" && !idPattern.MatchString(a.GetId()) {
		return Condition{}, &InvalidError{fmt.Sprintf("id %q: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", a.GetId())}
	}
	svc := a.GetService()
	if svc == "" {
		return Condition{}, &InvalidError{`a service is required: a service id, or "*" for every service`}
	}
	if strings.ContainsAny(svc, " \t\n") || (strings.Contains(svc, "*") && svc != "*") {
		return Condition{}, &InvalidError{fmt.Sprintf(`service %q: want a service id, or "*" for every service (no patterns)`, svc)}
	}
	cond, err := ParseCondition(a.GetCondition())
	if err != nil {
		return Condition{}, &InvalidError{err.Error()}
	}
	raw := a.GetWebhookUrl()
	if raw == "" {
		return Condition{}, &InvalidError{"a webhook URL is required"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Condition{}, &InvalidError{fmt.Sprintf("webhook URL %q: %v", raw, err)}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Condition{}, &InvalidError{fmt.Sprintf("webhook URL %q: the scheme must be http or https", raw)}
	}
	if u.Host == "" {
		return Condition{}, &InvalidError{fmt.Sprintf("webhook URL %q has no host", raw)}
	}
	if a.GetForSeconds() < 0 || a.GetForSeconds() > maxFor {
		return Condition{}, &InvalidError{fmt.Sprintf("for_seconds %d: want 0 to %d (30 days)", a.GetForSeconds(), maxFor)}
	}
	return cond, nil
}

func timestamp(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// CreateAlert implements cdpdv1.AlertServiceServer.
func (m *Manager) CreateAlert(_ context.Context, req *cdpdv1.CreateAlertRequest) (*cdpdv1.Alert, error) {
	a, err := m.Add(req.GetAlert())
	if err != nil {
		return nil, grpcError(err)
	}
	return a, nil
}

// ListAlerts implements cdpdv1.AlertServiceServer.
func (m *Manager) ListAlerts(context.Context, *emptypb.Empty) (*cdpdv1.ListAlertsResponse, error) {
	return &cdpdv1.ListAlertsResponse{Alerts: m.Alerts()}, nil
}

// DeleteAlert implements cdpdv1.AlertServiceServer.
func (m *Manager) DeleteAlert(_ context.Context, req *cdpdv1.DeleteAlertRequest) (*emptypb.Empty, error) {
	if req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "an alert id is required")
	}
	if err := m.Remove(req.GetId()); err != nil {
		return nil, grpcError(err)
	}
	return &emptypb.Empty{}, nil
}

func grpcError(err error) error {
	var inv *InvalidError
	var ex *ExistsError
	var nf *NotFoundError
	switch {
	case errors.As(err, &inv):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.As(err, &ex):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.As(err, &nf):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, errClosed):
		return status.Error(codes.Unavailable, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}
