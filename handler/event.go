package handler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"

	"github.com/odcr-autocancel/odcr-autocancel/internal/strictjson"
	"github.com/odcr-autocancel/odcr-autocancel/org"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// Request is a run request: what EventBridge Scheduler delivers (its Input,
// "{}" by default) and what a person sends when invoking by hand. Every field
// is optional and overrides the deployed setting for this run only; a field
// that loosens a deployed limit is accepted only in a dry run (guardrails).
type Request struct {
	// DryRun overrides DRY_RUN. Whoever may invoke the function may switch
	// the dry run off for one run.
	DryRun *bool `json:"dryRun,omitempty"`
	// ReservationIDs restricts the run to these reservations.
	ReservationIDs       []string `json:"reservationIds,omitempty"`
	IdleThresholdPercent *float64 `json:"idleThresholdPercent,omitempty"`
	LookbackHours        *int     `json:"lookbackHours,omitempty"`
	MaxCancellations     *int     `json:"maxCancellations,omitempty"`
	// GraceHours overrides GRACE_HOURS: only a longer grace in a run that
	// acts, a shorter one in a dry run.
	GraceHours *int `json:"graceHours,omitempty"`
	// Rightsize overrides RIGHTSIZE: switching it on is loosening (a
	// preview only, unless deployed on); the shrink limits likewise.
	Rightsize                *bool    `json:"rightsize,omitempty"`
	RightsizeHeadroomPercent *float64 `json:"rightsizeHeadroomPercent,omitempty"`
	RightsizeMinInstances    *int     `json:"rightsizeMinInstances,omitempty"`
	MaxModifications         *int     `json:"maxModifications,omitempty"`

	// Target is the account and region to run in (organization mode);
	// absent: the function's own.
	Target *org.Target `json:"target,omitempty"`
	// Report is the response's shape: "full" (the default, the whole
	// report) or "summary" (the counts, for the state machine).
	Report string `json:"report,omitempty"`

	// ListTargets and Collect are the state machine's other two requests;
	// each comes alone.
	ListTargets *org.ListTargetsRequest `json:"listTargets,omitempty"`
	Collect     *org.CollectRequest     `json:"collect,omitempty"`
}

// Values of a request's report field.
const (
	ReportFull    = "full"
	ReportSummary = "summary"
)

// scheduledEvent is the envelope of an EventBridge rule's scheduled event.
// It carries no settings: the run uses the deployed ones.
type scheduledEvent struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// maxReservationIDs bounds reservationIds: one describe call takes them all.
const maxReservationIDs = 1000

var reservationIDPattern = regexp.MustCompile(`^cr-[0-9a-f]{8,17}$`)

// ErrInvalidEvent marks an event refused before any AWS call:
// errors.Is(err, ErrInvalidEvent) holds for every *InvalidEventError.
var ErrInvalidEvent = errors.New("invalid event")

// InvalidEventError is the error of a refused event. Its type name is what
// Lambda reports as the invocation's errorType.
type InvalidEventError struct {
	Err error
}

func (e *InvalidEventError) Error() string        { return "invalid event: " + e.Err.Error() }
func (e *InvalidEventError) Unwrap() error        { return e.Err }
func (e *InvalidEventError) Is(target error) bool { return target == ErrInvalidEvent }

// ParseEvent decodes an invocation payload. It accepts an EventBridge
// scheduled event or a run request object, and refuses anything else with an
// error that names the problem. The second result names the kind of event.
func ParseEvent(payload []byte) (Request, string, error) {
	req, kind, err := parseEvent(payload)
	if err != nil {
		return Request{}, "", &InvalidEventError{Err: err}
	}
	return req, kind, nil
}

func parseEvent(payload []byte) (Request, string, error) {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 {
		return Request{}, "", errors.New(`the payload is empty; send a JSON object such as {}`)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil || fields == nil {
		return Request{}, "", errors.New("the payload is not a JSON object; send a run request such as {} or {\"dryRun\": true}")
	}
	_, hasType := fields["detail-type"]
	_, hasSource := fields["source"]
	if hasType || hasSource {
		var ev scheduledEvent
		if err := strictjson.Decode(trimmed, &ev); err != nil {
			return Request{}, "", fmt.Errorf("scheduled event: %w", err)
		}
		if ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" {
			return Request{}, "", fmt.Errorf(`unsupported event: detail-type %q from source %q; accepted: detail-type "Scheduled Event" from source "aws.events"`, ev.DetailType, ev.Source)
		}
		return Request{}, "scheduled-event", nil
	}
	// null would decode as an absent field: {"collect": null} would be a
	// run in the function's own account. These fields are objects or
	// absent.
	for _, field := range []string{"target", "listTargets", "collect"} {
		if v, ok := fields[field]; ok && string(bytes.TrimSpace(v)) == "null" {
			return Request{}, "", fmt.Errorf("run request: field %q: null; accepted: an object, or no such field", field)
		}
	}
	var req Request
	if err := strictjson.Decode(trimmed, &req); err != nil {
		return Request{}, "", fmt.Errorf("run request: %w", err)
	}
	if err := req.validate(); err != nil {
		return Request{}, "", fmt.Errorf("run request: %w", err)
	}
	return req, "run-request", nil
}

func (r Request) validate() error {
	// The state machine's listing and collecting requests come alone.
	switch {
	case r.ListTargets != nil && r.Collect != nil:
		return errors.New(`fields "listTargets" and "collect" together; accepted: one of them, alone`)
	case r.ListTargets != nil && !reflect.DeepEqual(r, Request{ListTargets: r.ListTargets}):
		return errors.New(`field "listTargets" with other fields; accepted: {"listTargets": {"after": "..."}} alone`)
	case r.Collect != nil && !reflect.DeepEqual(r, Request{Collect: r.Collect}):
		return errors.New(`field "collect" with other fields; accepted: {"collect": {...}} alone`)
	case r.ListTargets != nil:
		if a := r.ListTargets.After; a != "" && !org.IsAccountID(a) {
			return fmt.Errorf(`field "listTargets.after": %q is not the "next" of a page; accepted: empty, or a 12-digit account id`, a)
		}
		return nil
	case r.Collect != nil:
		return nil // checked as it was decoded
	}
	// A field accepts exactly what the deployed setting it overrides does.
	var errs []error
	switch r.Report {
	case "", ReportFull, ReportSummary:
	default:
		errs = append(errs, fmt.Errorf(`field "report": %q is not a report shape; accepted: %s, %s`, r.Report, ReportFull, ReportSummary))
	}
	if r.Target != nil {
		errs = append(errs, r.Target.Validate("target"))
	}
	for _, g := range guardrails {
		errs = append(errs, g.validate(r))
	}
	if r.ReservationIDs != nil {
		switch {
		case len(r.ReservationIDs) == 0:
			errs = append(errs, errors.New(`field "reservationIds": the list is empty; omit the field to evaluate every reservation`))
		case len(r.ReservationIDs) > maxReservationIDs:
			errs = append(errs, fmt.Errorf(`field "reservationIds": %d ids; accepted: at most %d`, len(r.ReservationIDs), maxReservationIDs))
		}
		seen := make(map[string]bool, len(r.ReservationIDs))
		for _, id := range r.ReservationIDs {
			if !reservationIDPattern.MatchString(id) {
				errs = append(errs, fmt.Errorf(`field "reservationIds": %q is not a capacity reservation id; accepted: ids such as cr-0123456789abcdef0`, id))
			} else if seen[id] {
				errs = append(errs, fmt.Errorf(`field "reservationIds": %q is listed twice`, id))
			}
			seen[id] = true
		}
	}
	return errors.Join(errs...)
}

// inRange refuses a value outside the bounds of the setting variable.
func inRange[T int | float64](field, variable string, v *T) error {
	if v == nil {
		return nil
	}
	if s := spec(variable); float64(*v) < s.Min || float64(*v) > s.Max {
		return fmt.Errorf("field %q: %v is out of range; accepted: %s", field, *v, accepted(s))
	}
	return nil
}

// guardrails are the deployed limits a run request may override for one
// run. Permission to invoke the function is not permission to rewrite the
// policy its deployer reviewed: a request may always tighten a limit, but
// may loosen one only when the run is a dry run, a what-if preview that
// cancels nothing. A request that loosens a limit for a run that cancels is
// refused before any AWS call. A new limit joins in one line:
// atMostDeployed when a higher value loosens it, atLeastDeployed when a lower
// one does.
var guardrails = []guardrail{
	atMostDeployed("idleThresholdPercent", "IDLE_THRESHOLD_PERCENT", func(r Request) *float64 { return r.IdleThresholdPercent }, func(s *Settings) *float64 { return &s.IdleThresholdPercent }),
	atLeastDeployed("lookbackHours", "LOOKBACK_HOURS", func(r Request) *int { return r.LookbackHours }, func(s *Settings) *int { return &s.LookbackHours }),
	atMostDeployed("maxCancellations", "MAX_CANCELLATIONS_PER_RUN", func(r Request) *int { return r.MaxCancellations }, func(s *Settings) *int { return &s.MaxCancellations }),
	atLeastDeployed("graceHours", "GRACE_HOURS", func(r Request) *int { return r.GraceHours }, func(s *Settings) *int { return &s.GraceHours }),
	atLeastDeployed("rightsizeHeadroomPercent", "RIGHTSIZE_HEADROOM_PERCENT", func(r Request) *float64 { return r.RightsizeHeadroomPercent }, func(s *Settings) *float64 { return &s.RightsizeHeadroomPercent }),
	atLeastDeployed("rightsizeMinInstances", "RIGHTSIZE_MIN_INSTANCES", func(r Request) *int { return r.RightsizeMinInstances }, func(s *Settings) *int { return &s.RightsizeMinInstances }),
	atMostDeployed("maxModifications", "MAX_MODIFICATIONS_PER_RUN", func(r Request) *int { return r.MaxModifications }, func(s *Settings) *int { return &s.MaxModifications }),
	switchedOn("rightsize", "RIGHTSIZE", func(r Request) *bool { return r.Rightsize }, func(s *Settings) *bool { return &s.Rightsize }),
}

// guardrail is one request field that overrides a deployed limit.
type guardrail struct {
	// boolean: a switch, loosened by switching it on.
	boolean bool
	// higherLoosens: a higher value loosens the limit (a larger budget, a
	// higher threshold); otherwise a lower one does (a shorter lookback).
	higherLoosens bool
	// validate refuses a value outside the bounds of the deployed variable.
	validate func(Request) error
	// override sets the request's value, if any, on s, and returns what it
	// loosened, or nil when it did not loosen the limit s held.
	override func(Request, *Settings) *report.LoosenedLimit
}

// switchedOn: a switch a request may turn off in any run, on only in a dry
// run (turning on an action is loosening the policy).
func switchedOn(field, variable string, requested func(Request) *bool, setting func(*Settings) *bool) guardrail {
	spec(variable)
	num := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	return guardrail{
		boolean:  true,
		validate: func(Request) error { return nil },
		override: func(r Request, s *Settings) *report.LoosenedLimit {
			v := requested(r)
			if v == nil {
				return nil
			}
			dst := setting(s)
			deployed := *dst
			*dst = *v
			if *v && !deployed {
				return &report.LoosenedLimit{Field: field, Setting: variable, Requested: num(*v), Deployed: num(deployed)}
			}
			return nil
		},
	}
}

// atMostDeployed: a limit a request may lower in any run, raise only in a
// dry run.
func atMostDeployed[T int | float64](field, variable string, requested func(Request) *T, setting func(*Settings) *T) guardrail {
	return guarded(field, variable, true, requested, setting)
}

// atLeastDeployed: a limit a request may raise in any run, lower only in a
// dry run.
func atLeastDeployed[T int | float64](field, variable string, requested func(Request) *T, setting func(*Settings) *T) guardrail {
	return guarded(field, variable, false, requested, setting)
}

func guarded[T int | float64](field, variable string, higherLoosens bool, requested func(Request) *T, setting func(*Settings) *T) guardrail {
	spec(variable) // panics on a misspelt variable, when the package loads
	return guardrail{
		higherLoosens: higherLoosens,
		validate:      func(r Request) error { return inRange(field, variable, requested(r)) },
		override: func(r Request, s *Settings) *report.LoosenedLimit {
			v := requested(r)
			if v == nil {
				return nil
			}
			dst := setting(s)
			deployed := *dst
			*dst = *v
			if (higherLoosens && *v > deployed) || (!higherLoosens && *v < deployed) {
				return &report.LoosenedLimit{Field: field, Setting: variable, Requested: float64(*v), Deployed: float64(deployed)}
			}
			return nil
		},
	}
}

// refusal is the error of a request that loosens the limit l in a run that
// cancels: it names the field, the requested and the deployed value, and
// what a run that cancels accepts.
func (g guardrail) refusal(l report.LoosenedLimit) error {
	v := spec(l.Setting)
	if g.boolean {
		return fmt.Errorf("field %q: true, but the deployed %s=false: a run request may switch it on only in a dry run (a preview); accepted in a run that acts: false",
			l.Field, l.Setting)
	}
	kind := "a number"
	if v.Integer {
		kind = "an integer"
	}
	side, lo, hi := "above", v.Min, l.Deployed
	if !g.higherLoosens {
		side, lo, hi = "below", l.Deployed, v.Max
	}
	return fmt.Errorf("field %q: %v is %s the deployed %s=%v: a run request may loosen a deployed limit only in a dry run (a preview); accepted in a run that cancels: %s from %v to %v",
		l.Field, l.Requested, side, l.Setting, l.Deployed, kind, lo, hi)
}

// apply returns the settings for this run: the deployed ones with the
// request's overrides, and the deployed limits the request loosened, which
// only a dry run may do. A request that loosens a limit for a run that
// cancels is refused with an *InvalidEventError naming every such field.
func (r Request) apply(deployed Settings) (Settings, []report.LoosenedLimit, error) {
	s := deployed
	if r.DryRun != nil {
		s.DryRun = *r.DryRun
	}
	var loosened []report.LoosenedLimit
	var errs []error
	for _, g := range guardrails {
		switch l := g.override(r, &s); {
		case l == nil:
		case s.DryRun:
			loosened = append(loosened, *l)
		default:
			errs = append(errs, g.refusal(*l))
		}
	}
	if s.GraceHours > s.LookbackHours {
		errs = append(errs, fmt.Errorf(`fields "graceHours" and "lookbackHours": a grace of %d hours is longer than the lookback of %d hours, so it could never be observed; accepted: graceHours at most lookbackHours`,
			s.GraceHours, s.LookbackHours))
	}
	if len(errs) > 0 {
		return Settings{}, nil, &InvalidEventError{Err: fmt.Errorf("run request: %w", errors.Join(errs...))}
	}
	return s, loosened, nil
}
