package handler

// One run: its state, and the steps runRequest calls in turn.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/dependents"
	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/internal/version"
	"github.com/odcr-autocancel/odcr-autocancel/marks"
	"github.com/odcr-autocancel/odcr-autocancel/org"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
	"github.com/odcr-autocancel/odcr-autocancel/utilization"
)

// run holds the state of one invocation. It is made by start, with every
// value a step needs copied in: no step reaches back to the Handler.
type run struct {
	// home is the function's own account and region; target the one the
	// run acts in, whose clients c are.
	home     org.Home
	target   org.Target
	c        awsapi.Clients
	region   string
	settings Settings
	log      *zap.Logger
	audit    *zap.Logger // the audit trail: kept at every log level (NewLogger)
	calls    *awsapi.Calls
	policy   policy.Settings
	window   utilization.Window
	reader   *utilization.Reader
	started  time.Time
	now      func() time.Time
	// margin: no cancel starts this close to the invocation deadline.
	margin time.Duration
	// concurrency bounds the calls in flight of a step (metric batches,
	// group listings, prices).
	concurrency int
	// outOfTime counts the reservations left unmeasured for lack of time.
	outOfTime int
	// retries counts the SDK's retries; retriesBefore is its count when
	// the run started.
	retries       *awsapi.RetryCounter
	retriesBefore int64
	// onProgress, when set, is told how far the run is.
	onProgress func(step string, done, total int)
	// reservations are the descriptions evaluated, by id.
	reservations map[string]policy.Reservation
	// signer signs and checks marks (MARK_KEY_ID); nil in a preview
	// without the key, which reads marks unchecked and never acts.
	signer *marks.Signer
	// tagWrites paces CreateTags and DeleteTags (Settings.tagWriteEvery).
	tagWrites awsapi.Pace
	// pinned keeps the template versions the first sweep of what would
	// launch into a reservation described, for the re-verification's.
	pinned dependents.Pinned
}

// start makes the run of a request, or refuses it before anything is read:
// an invalid event, a request that loosens a deployed limit for a run that
// acts, a target outside the deployment (all *InvalidEventError), an
// identity that cannot be had (*ReadError), an unreachable target
// (*org.TargetError). Each refusal is in the audit trail. It logs "run
// started" with the run's settings.
func (h *Handler) start(ctx context.Context, req Request, kind string, parseErr error) (*run, *report.Report, error) {
	runID := h.runID(ctx)
	log := h.Logger.With(zap.String("request_id", runID))
	// The audit trail is written whatever LOG_LEVEL says (see NewLogger).
	audit := log.Named(AuditLogger)
	started := h.Now()
	retriesBefore := h.Retries.Count()
	refuse := func(msg string, err error) (*run, *report.Report, error) {
		audit.Error(msg, zap.Error(err))
		return nil, nil, err
	}

	if parseErr != nil {
		return refuse("invalid event; nothing done", parseErr)
	}
	if req.ListTargets != nil || req.Collect != nil {
		return refuse("invalid event; nothing done",
			&InvalidEventError{Err: errors.New(`"listTargets" and "collect" are answered by Invoke, not Run`)})
	}
	// A request that loosens a deployed limit for a run that cancels is
	// refused here, before any AWS call (STS included), like any invalid
	// event.
	settings, loosened, err := req.apply(h.Settings)
	if err != nil {
		return refuse("invalid event; nothing done", err)
	}
	if !settings.DryRun && settings.GraceHours > 0 && (settings.MarkKeyID == "" || h.KMS == nil) {
		return refuse("invalid event; nothing done", &InvalidEventError{Err: fmt.Errorf(
			"field %q: false, but MARK_KEY_ID %s", "dryRun", errNoMarkKey)})
	}
	home, err := h.home(ctx)
	if err != nil {
		return refuse("run failed before evaluation; nothing cancelled", &ReadError{Err: err})
	}
	// The account and region the run acts in: the request's target, or
	// the function's own. Every line from here on names them.
	target := home.Target
	if req.Target != nil {
		target = *req.Target
	}
	log = log.With(zap.String("account_id", target.AccountID), zap.String("region", target.Region))
	audit = log.Named(AuditLogger)
	if err := h.Settings.Admits(home, target); err != nil {
		return refuse("invalid event; nothing done", &InvalidEventError{Err: fmt.Errorf("run request: %w", err)})
	}
	switch listed, err := h.targetLister().Listed(ctx, home, target.AccountID); {
	case err != nil:
		return refuse("run failed before evaluation; nothing cancelled",
			&ReadError{Err: fmt.Errorf("whether account %s is in ORGANIZATIONAL_UNITS: %w", target.AccountID, err)})
	case !listed:
		return refuse("invalid event; nothing done", &InvalidEventError{Err: fmt.Errorf(
			"run request: field %q: %s is not a target of this deployment (ORGANIZATIONAL_UNITS=%s); accepted: an active account in those OUs or below them",
			"target.accountId", target.AccountID, strings.Join(h.Settings.OrganizationalUnits, ","))})
	}
	clients, err := h.clientsFor(ctx, home, target, runID)
	if err != nil {
		return refuse("target unreachable; nothing done", err)
	}

	calls := &awsapi.Calls{}
	r := &run{
		home: home, target: target, c: clients, region: target.Region, settings: settings,
		log: log, audit: audit, calls: calls,
		policy: settings.policy(target.AccountID),
		window: utilization.NewWindow(started, settings.LookbackHours),
		reader: &utilization.Reader{
			API: clients.CloudWatch, Calls: calls, Pacer: h.pacer(settings),
			Concurrency: h.metricConcurrency(), PerCall: h.MetricsPerCall,
		},
		started: started, now: h.Now, margin: h.deadlineMargin(ctx),
		concurrency: h.metricConcurrency(),
		retries:     h.Retries, retriesBefore: retriesBefore, onProgress: h.Progress,
	}
	if settings.MarkKeyID != "" && h.KMS != nil {
		// The key stays in the function's own account: its own
		// credentials sign and check the marks of every target.
		r.signer = &marks.Signer{KMS: h.KMS, KeyID: settings.MarkKeyID, Account: target.AccountID, Region: target.Region, Calls: calls,
			PerSecond: marks.PerRun(settings.MaxConcurrency)}
		r.policy.SignedMarks = true
	}
	rep := &report.Report{
		RunID:        runID,
		Version:      version.Version,
		Event:        kind,
		AccountID:    target.AccountID,
		Region:       target.Region,
		DryRun:       settings.DryRun,
		StartedAt:    started,
		Settings:     effective(settings, req, r.window),
		Cancelled:    []string{},
		Failures:     []report.Failure{},
		NotAttempted: []string{},
	}
	rep.Settings.Loosened = loosened
	audit.Info("run started", zap.String("event", kind), zap.String("version", version.Version), zap.Bool("dry_run", settings.DryRun),
		zap.Bool("own_account", target.AccountID == home.AccountID), zap.Any("settings", rep.Settings))
	return r, rep, nil
}

// withinMargin ends every AWS call three quarters of the margin before the
// invocation deadline, so a hanging read or cancel still leaves time to log
// and return the report; no cancel starts within the whole margin (see
// each).
func (r *run) withinMargin(ctx context.Context) (context.Context, context.CancelFunc) {
	if deadline, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, deadline.Add(-r.margin*3/4))
	}
	return ctx, func() {}
}

// readFailed is the error of a run whose evaluation failed: nothing was
// changed. When the first read of another account or region refused its
// credentials (a region not enabled for the account, a member role without
// the function's permissions), the target is unreachable (*org.TargetError);
// otherwise the account could not be read (*ReadError).
func (r *run) readFailed(err error) error {
	if !r.home.Is(r.target) && awsapi.RefusesCredentials(err) {
		err = &org.TargetError{Target: r.target, Err: err}
		r.audit.Error("target unreachable; nothing done", zap.Error(err), zap.Any("api_calls", r.calls.Snapshot()))
		return err
	}
	r.audit.Error("run failed before any cancel; nothing cancelled", zap.Error(err),
		zap.Any("api_calls", r.calls.Snapshot()))
	return &ReadError{Err: err}
}

// progress tells the Handler's Progress, if any, how far the run is.
func (r *run) progress(step string, done, total int) {
	if r.onProgress != nil {
		r.onProgress(step, done, total)
	}
}

// act removes the marks of the plan, re-verifies and makes its cancels and
// shrinks, then writes its new marks, unless the run is a dry run or the
// plan aborted. It returns the final decisions. The new marks come last:
// each is a paced CreateTags (Settings.tagWriteEvery), so a run with thousands to
// write uses what time is left for them, and never the time of the
// cancels, which the budget bounds; those it cannot write a later run
// does.
func (r *run) act(ctx context.Context, plan policy.Plan, rep *report.Report) []policy.Decision {
	if plan.Aborted || r.settings.DryRun {
		return plan.Decisions
	}
	byID := make(map[string]policy.Decision, len(plan.Decisions))
	for _, d := range plan.Decisions {
		byID[d.ReservationID] = d
	}
	if len(plan.Mark)+len(plan.Unmark) > 0 {
		r.removeMarks(ctx, plan, byID, rep)
	}
	decisions := plan.Decisions
	if len(plan.Cancel)+len(plan.Modify) > 0 {
		decisions = r.cancelAndShrink(ctx, plan, rep)
	}
	if r.signer != nil && len(plan.Mark) > 0 {
		r.writeMarks(ctx, plan, byID, rep)
	}
	return decisions
}
