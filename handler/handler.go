// Package handler turns an invocation into a run: it reads the account's
// capacity reservations and their utilization, asks package policy for a
// decision on each, logs the whole plan, then (unless the run is a dry run)
// cancels the idle ones after checking them once more.
package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// Defaults for the Handler's tuning fields.
const (
	DefaultDeadlineMargin    = 10 * time.Second
	DefaultMetricConcurrency = 4
	DefaultMaxResponseBytes  = 5 << 20
)

// Handler runs one evaluation per invocation. Its fields are set once by main
// (or a test) and only read afterwards, so one Handler serves every
// invocation.
type Handler struct {
	EC2        EC2API
	CloudWatch CloudWatchAPI
	// RAM lists the reservations this account shares out; without it
	// every reservation's sharing is unknown, and none is cancelled.
	RAM RAMAPI
	// Pricing reads On-Demand prices for the cost figures (PRICING=on);
	// without it the figures are left out.
	Pricing PriceLister
	// SNS publishes the notification to NOTIFY_TOPIC_ARN; Region is the
	// region the run acts in, for the notification and the prices.
	SNS    Publisher
	Region string
	// Targets reaches other accounts (through the member role) and other
	// regions, for a run request with a target and for REGIONS=all;
	// Organizations lists the accounts of ACCOUNTS=organization.
	Targets       Connector
	Organizations OrganizationsAPI
	Settings      Settings
	Logger        *zap.Logger
	Now           func() time.Time
	// CallerAccount returns the account of the credentials in use. It is
	// asked only outside Lambda; inside, the account comes from the
	// invoked function's ARN.
	CallerAccount func(context.Context) (string, error)
	// NewRunID names a run when there is no Lambda request id.
	NewRunID func() string
	// DeadlineMargin is the time kept before the invocation deadline to log
	// and return the report: no cancel starts within it. Zero means 10 s, or
	// a fifth of the invocation's time when that is shorter.
	DeadlineMargin time.Duration
	// MetricConcurrency bounds the GetMetricData calls in flight.
	MetricConcurrency int
	// MetricsPerCall, when positive, caps the reservations measured per
	// GetMetricData call below what CloudWatch's limits allow (250 at most).
	// Zero is right for production; benchmarks set 1 for the naive baseline.
	MetricsPerCall int
	// Retries, when set, counts the SDK's retries for the report; main wraps
	// the clients' retryer with it.
	Retries *RetryCounter
	// Progress, when set, is told how far a run is: the step ("listed",
	// "measured", "cancelled", "shrunk") and how many of how many. The
	// command line shows it on a terminal; Lambda leaves it unset.
	Progress func(step string, done, total int)
	// MaxResponseBytes bounds the JSON report Invoke returns; Lambda refuses
	// a synchronous response over 6 MB.
	MaxResponseBytes int

	// listing keeps the organization's accounts and regions between the
	// pages of a target listing (targets.go).
	listing listingCache
}

// Invoke implements lambda.Handler: the payload is decoded by ParseEvent (so
// malformed JSON gets our error, not the runtime's), the report is returned as
// JSON. A run that must show as failed returns the error, after logging the
// report summary.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	// The state machine's listing and collecting requests answer with
	// their own shapes; anything else is a run.
	req, kind, err := ParseEvent(payload)
	switch {
	case err == nil && req.ListTargets != nil:
		return encode(h.ListTargets(ctx, *req.ListTargets))
	case err == nil && req.Collect != nil:
		return encode(h.Collect(ctx, *req.Collect))
	}
	report, err := h.runRequest(ctx, req, kind, err)
	var failed *RunFailedError
	if report != nil && report.shape == ReportSummary && errors.As(err, &failed) {
		// The run completed but failed: the state machine gets what it
		// did, and why it failed, rather than an error that would lose
		// its counts.
		sum := report.Summary()
		sum.Error, sum.Cause = "RunFailedError", truncate(err.Error(), maxCauseBytes)
		return encode(sum, nil)
	}
	if err != nil {
		return nil, err
	}
	if report.shape == ReportSummary {
		return encode(report.Summary(), nil)
	}
	// Every line is in the logs already; a response too large leaves out
	// detail, step by step, rather than fail the invocation.
	out, err := report.fit(h.maxResponseBytes())
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return out, nil
}

// encode is a response as JSON, or the error.
func encode[T any](v T, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	return out, nil
}

// Run performs one run and returns its report. The error is non-nil when the
// event is invalid, when AWS could not be read (nothing is cancelled then), or
// when the run completed but must count as failed (ErrRunFailed).
func (h *Handler) Run(ctx context.Context, payload []byte) (*Report, error) {
	req, kind, err := ParseEvent(payload)
	return h.runRequest(ctx, req, kind, err)
}

// runRequest is Run once the payload is parsed; parseErr is ParseEvent's
// error, logged and returned as the run's.
func (h *Handler) runRequest(ctx context.Context, req Request, kind string, parseErr error) (*Report, error) {
	runID := h.runID(ctx)
	log := h.Logger.With(zap.String("request_id", runID))
	// The audit trail is written whatever LOG_LEVEL says (see NewLogger).
	audit := log.Named(AuditLogger)
	started := h.Now()
	retriesBefore := h.Retries.Count()

	if parseErr != nil {
		audit.Error("invalid event; nothing done", zap.Error(parseErr))
		return nil, parseErr
	}
	if req.ListTargets != nil || req.Collect != nil {
		err := &InvalidEventError{Err: errors.New(`"listTargets" and "collect" are answered by Invoke, not Run`)}
		audit.Error("invalid event; nothing done", zap.Error(err))
		return nil, err
	}
	// A request that loosens a deployed limit for a run that cancels is
	// refused here, before any AWS call (STS included), like any invalid
	// event.
	settings, loosened, err := req.apply(h.Settings)
	if err != nil {
		audit.Error("invalid event; nothing done", zap.Error(err))
		return nil, err
	}
	self, partition, err := h.identity(ctx)
	if err != nil {
		audit.Error("run failed before evaluation; nothing cancelled", zap.Error(err))
		return nil, &ReadError{Err: err}
	}
	// The account and region the run acts in: the request's target, or
	// the function's own. Every line from here on names them.
	target := Target{AccountID: self, Region: h.Region}
	if req.Target != nil {
		target = *req.Target
	}
	account := target.AccountID
	log = log.With(zap.String("account_id", account), zap.String("region", target.Region))
	audit = log.Named(AuditLogger)
	if err := h.deployedTarget(self, target); err != nil {
		audit.Error("invalid event; nothing done", zap.Error(err))
		return nil, err
	}
	clients, err := h.clientsFor(ctx, self, partition, target, runID)
	if err != nil {
		audit.Error("target unreachable; nothing done", zap.Error(err))
		return nil, err
	}

	r := &run{
		h:             h,
		c:             clients,
		region:        target.Region,
		log:           log,
		audit:         audit,
		calls:         &callCounter{},
		window:        metricWindow(started, settings.LookbackHours),
		started:       started,
		margin:        h.deadlineMargin(ctx),
		retriesBefore: retriesBefore,
		policy: policy.Settings{
			AccountID:            account,
			IdleThresholdPercent: settings.IdleThresholdPercent,
			Lookback:             time.Duration(settings.LookbackHours) * time.Hour,
			MinCoveragePercent:   settings.MinCoveragePercent,
			ProtectTagKey:        settings.ProtectTagKey,
			RequiredTagKey:       settings.RequiredTagKey,
			RequiredTagValue:     settings.RequiredTagValue,
			InstanceTypes:        settings.InstanceTypes,
			AvailabilityZones:    settings.AvailabilityZones,
			MaxCancellations:     settings.MaxCancellations,
			MaxIdleSharePercent:  settings.MaxIdleSharePercent,
			PublishingInterval:   publishingInterval,
			Grace:                time.Duration(settings.GraceHours) * time.Hour,

			Rightsize:                settings.Rightsize,
			RightsizeHeadroomPercent: settings.RightsizeHeadroomPercent,
			RightsizeMinInstances:    settings.RightsizeMinInstances,
			MaxModifications:         settings.MaxModifications,
		},
	}
	report := &Report{
		RunID:        runID,
		Event:        kind,
		AccountID:    account,
		Region:       target.Region,
		DryRun:       settings.DryRun,
		StartedAt:    started,
		Settings:     effective(settings, req, r.window),
		Cancelled:    []string{},
		Failures:     []Failure{},
		NotAttempted: []string{},
	}
	report.Settings.Loosened = loosened
	report.shape = req.Report
	audit.Info("run started", zap.String("event", kind), zap.Bool("dry_run", settings.DryRun),
		zap.Bool("own_account", account == self), zap.Any("settings", report.Settings))

	// Every AWS call ends three quarters of the margin before the
	// invocation deadline, so a hanging read or cancel still leaves time to
	// log and return the report; no cancel starts within the whole margin
	// (see apply).
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-r.margin*3/4))
		defer cancel()
	}
	plan, err := r.evaluate(ctx, req.ReservationIDs, report)
	if err != nil && target != (Target{AccountID: self, Region: h.Region}) && refusesCredentials(err) {
		// The first read of another account or region refused its
		// credentials (a region not enabled for the account, a member
		// role without the function's permissions): the target is
		// unreachable, and nothing was read or changed in it.
		err = &TargetError{Target: target, Err: err}
		audit.Error("target unreachable; nothing done", zap.Error(err), zap.Any("api_calls", r.calls.snapshot()))
		return nil, err
	}
	if err != nil {
		audit.Error("run failed before any cancel; nothing cancelled", zap.Error(err),
			zap.Any("api_calls", r.calls.snapshot()))
		return nil, &ReadError{Err: err}
	}
	if settings.Pricing {
		r.estimateCosts(ctx, plan.Decisions, report)
	}
	r.logPlan(plan, settings.DryRun)

	decisions := plan.Decisions
	if !plan.Aborted && !settings.DryRun && len(plan.Mark)+len(plan.Unmark) > 0 {
		r.applyMarks(ctx, plan, decisions, report)
	}
	if !plan.Aborted && !settings.DryRun && len(plan.Cancel)+len(plan.Modify) > 0 {
		decisions = r.apply(ctx, plan, report)
	}
	report.Costs = costs(decisions, report)
	// Once everything is done: a failed notification loses nothing.
	notifyErr := r.notify(ctx, settings, plan, decisions, report)
	return r.finish(report, plan, decisions, notifyErr)
}

// run holds the state of one invocation.
type run struct {
	h *Handler
	// c are the clients of the run's target, in region.
	c       Clients
	region  string
	log     *zap.Logger
	audit   *zap.Logger // the audit trail: kept at every log level (NewLogger)
	calls   *callCounter
	policy  policy.Settings
	window  window
	started time.Time
	// margin: no cancel starts this close to the invocation deadline.
	margin time.Duration
	// retriesBefore is the retry count when the run started.
	retriesBefore int64
	// reservations are the descriptions evaluated, by id.
	reservations map[string]policy.Reservation
}

// evaluate lists, screens, measures and checks every reservation, and plans.
// It makes no change to the account.
func (r *run) evaluate(ctx context.Context, ids []string, report *Report) (policy.Plan, error) {
	reservations, err := describeReservations(ctx, r.c.EC2, r.calls, ids)
	if err != nil {
		return policy.Plan{}, err
	}
	reservations, repeated := unique(reservations)
	r.progress("listed", len(reservations), len(reservations))
	if len(repeated) > 0 {
		r.audit.Warn("reservations listed more than once; one decision each", zap.Strings("reservation_ids", repeated))
	}
	r.markSharing(ctx, reservations, report)

	now := r.started
	decisions := make([]policy.Decision, len(reservations))
	var eligible []string
	for i, res := range reservations {
		decisions[i] = policy.Screen(r.policy, res, now)
		// A reservation kept for its use may still be shrunk: measure it.
		if decisions[i].Candidate() || policy.RightsizeEligible(r.policy, decisions[i], res, now) {
			eligible = append(eligible, res.ID)
		}
	}

	m := measure(ctx, r.c.CloudWatch, r.calls, eligible, r.window, r.h.metricConcurrency(), r.h.MetricsPerCall,
		func(n int) { r.progress("measured", n, len(eligible)) })
	report.Problems = append(report.Problems, m.problems...)
	if len(m.messages) > 0 {
		r.log.Warn("CloudWatch returned messages", zap.Int("count", len(m.messages)),
			zap.Strings("messages", m.messages[:min(len(m.messages), 20)]))
	}
	usage := func(id string) *policy.Utilization {
		if got, ok := m.usage[id]; ok {
			return &got
		}
		return nil
	}
	// The stopped instances matter to the idle candidates, and to those
	// that may be shrunk.
	var check []policy.Reservation
	for i, d := range decisions {
		if d.Candidate() {
			decisions[i] = policy.Judge(r.policy, d, usage(d.ReservationID))
		}
		if decisions[i].Candidate() || policy.RightsizeEligible(r.policy, decisions[i], reservations[i], now) {
			check = append(check, reservations[i])
		}
	}

	deps, problems := stoppedDependents(ctx, r.c.EC2, r.calls, check, r.h.metricConcurrency())
	report.Problems = append(report.Problems, problems...)
	r.reservations = make(map[string]policy.Reservation, len(reservations))
	for i, d := range decisions {
		dep := dependentsOf(deps, d.ReservationID)
		d = policy.Stopped(d, dep)
		if !d.Candidate() {
			d = policy.Rightsize(r.policy, d, reservations[i], usage(d.ReservationID), dep, now)
		}
		// The grace period: mark, wait, then cancel or shrink; unmark
		// what is no longer idle or oversized.
		decisions[i] = policy.Grace(r.policy, d, reservations[i], now)
		r.reservations[d.ReservationID] = reservations[i]
	}
	return policy.MakePlan(r.policy, decisions), nil
}

// progress tells the Handler's Progress, if any, how far the run is.
func (r *run) progress(step string, done, total int) {
	if r.h.Progress != nil {
		r.h.Progress(step, done, total)
	}
}

// logPlan writes one line per decision and one summary line. It runs before
// any cancel call, so the plan survives even if the run dies while acting.
func (r *run) logPlan(plan policy.Plan, dryRun bool) {
	for _, d := range plan.Decisions {
		r.audit.Info("decision", decisionFields(d, dryRun)...)
	}
	r.audit.Info("plan",
		zap.Bool("dry_run", dryRun),
		zap.Int("reservations", len(plan.Decisions)),
		zap.Int("eligible", plan.Eligible),
		zap.Int("idle", plan.Idle),
		zap.Int("to_cancel", len(plan.Cancel)),
		zap.Strings("cancel_ids", plan.Cancel),
		zap.Strings("mark_ids", plan.Mark),
		zap.Strings("unmark_ids", plan.Unmark),
		zap.Strings("modify_ids", plan.Modify),
		zap.Bool("aborted", plan.Aborted),
		zap.String("abort_reason", plan.AbortReason),
	)
}

func decisionFields(d policy.Decision, dryRun bool) []zap.Field {
	f := []zap.Field{
		zap.String("reservation_id", d.ReservationID),
		zap.String("action", string(d.Action)),
		zap.String("reason", string(d.Reason)),
		zap.String("detail", d.Detail),
		zap.Bool("dry_run", dryRun),
		zap.String("state", d.Facts.State),
		zap.String("owner_id", d.Facts.OwnerID),
		zap.String("instance_type", d.Facts.InstanceType),
		zap.String("availability_zone", d.Facts.AvailabilityZone),
		zap.Float64("age_hours", d.Facts.AgeHours),
		zap.Float64("current_utilization_percent", d.Facts.CurrentUtilization),
	}
	if d.Facts.PeakUsed != nil {
		f = append(f, zap.Float64("peak_used_instances", *d.Facts.PeakUsed))
	}
	if d.Facts.PeakUtilization != nil {
		f = append(f, zap.Float64("peak_utilization_percent", *d.Facts.PeakUtilization))
	}
	if d.Facts.CoveragePercent != nil {
		f = append(f, zap.Float64("coverage_percent", *d.Facts.CoveragePercent))
	}
	if d.Facts.StoppedTargets != nil {
		f = append(f, zap.Int("stopped_targeting_instances", *d.Facts.StoppedTargets))
	}
	if d.Resize != nil {
		f = append(f, zap.Int32("from", d.Resize.From), zap.Int32("to", d.Resize.To), zap.Int32("target", d.Resize.Target))
	}
	if d.Facts.MonthlyCost != nil {
		f = append(f, zap.Float64("hourly_cost", *d.Facts.HourlyCost), zap.Float64("monthly_cost", *d.Facts.MonthlyCost))
	}
	if d.Mark != nil {
		f = append(f, zap.Time("idle_since", d.Mark.IdleSince), zap.Time("cancel_after", d.Mark.CancelAfter))
	}
	return f
}

// finish fills the report, logs its summary and decides whether the
// invocation failed.
func (r *run) finish(report *Report, plan policy.Plan, decisions []policy.Decision, notifyErr string) (*Report, error) {
	report.FinishedAt = r.h.Now()
	report.Aborted = plan.Aborted
	report.AbortReason = plan.AbortReason
	report.Decisions = decisions
	report.APICalls = r.calls.snapshot()
	report.Retries = r.h.Retries.Count() - r.retriesBefore
	report.Counts = Counts{
		Reservations: len(decisions),
		Eligible:     plan.Eligible,
		Idle:         plan.Idle,
		Planned:      len(plan.Cancel),
		Cancelled:    len(report.Cancelled),
		Failed:       len(report.Failures),
		NotAttempted: len(report.NotAttempted),
		Marked:       len(report.Marked),
		Modified:     len(report.Modified),
		Unmarked:     len(report.Unmarked),
		Reasons:      make(map[policy.Reason]int),
		Actions:      make(map[policy.Action]int),
	}
	for i := range decisions {
		decisions[i].AccountID, decisions[i].Region = report.AccountID, report.Region
	}
	for _, d := range decisions {
		report.Counts.Reasons[d.Reason]++
		report.Counts.Actions[d.Action]++
	}

	summary := []zap.Field{
		zap.Bool("dry_run", report.DryRun),
		zap.Any("counts", report.Counts),
		zap.Strings("cancelled", report.Cancelled),
		zap.Strings("already_cancelled", report.AlreadyCancelled),
		zap.Any("failures", report.Failures),
		zap.Strings("not_attempted", report.NotAttempted),
		zap.Any("modified", report.Modified),
		zap.Strings("marked", report.Marked),
		zap.Strings("unmarked", report.Unmarked),
		zap.Any("tag_failures", report.TagFailures),
		zap.Strings("problems", report.Problems),
		zap.Bool("notified", report.Notified),
		zap.Any("costs", report.Costs),
		zap.Any("api_calls", report.APICalls),
		zap.Int64("retries", report.Retries),
		zap.Duration("duration", report.FinishedAt.Sub(report.StartedAt)),
	}
	r.logMetrics(report)
	var err error
	switch {
	case plan.Aborted:
		err = &RunFailedError{Aborted: plan.AbortReason, Notify: notifyErr}
	case len(report.Failures) > 0 || len(report.NotAttempted) > 0 || len(report.TagFailures) > 0 || notifyErr != "":
		err = &RunFailedError{Failures: report.Failures, NotAttempted: report.NotAttempted, TagFailures: report.TagFailures, Notify: notifyErr}
	}
	if err != nil {
		r.audit.Error("run finished with failures", append(summary, zap.Error(err))...)
		return report, err
	}
	r.audit.Info("run finished", summary...)
	return report, nil
}

func effective(s Settings, req Request, w window) Effective {
	e := Effective{
		DryRun:               s.DryRun,
		IdleThresholdPercent: s.IdleThresholdPercent,
		LookbackHours:        s.LookbackHours,
		MinCoveragePercent:   s.MinCoveragePercent,
		ProtectTagKey:        s.ProtectTagKey,
		MaxCancellations:     s.MaxCancellations,
		MaxIdleSharePercent:  s.MaxIdleSharePercent,
		InstanceTypes:        s.InstanceTypes,
		AvailabilityZones:    s.AvailabilityZones,
		ReservationIDs:       req.ReservationIDs,
		WindowStart:          w.Start.Format(time.RFC3339),
		WindowEnd:            w.End.Format(time.RFC3339),
		PeriodSeconds:        int(w.Period / time.Second),
		GraceHours:           s.GraceHours,
	}
	if s.RequiredTagKey != "" {
		e.RequiredTag = s.RequiredTagKey
		if s.RequiredTagValue != "" {
			e.RequiredTag += "=" + s.RequiredTagValue
		}
	}
	return e
}

func (h *Handler) runID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		return lc.AwsRequestID
	}
	if h.NewRunID != nil {
		return h.NewRunID()
	}
	return "local"
}

// account is the account the function acts for: only its own reservations
// may be cancelled.
func (h *Handler) account(ctx context.Context) (string, error) {
	if arn := invokedFunctionARN(ctx); arn != "" {
		acct, err := accountFromARN(arn)
		if err != nil {
			return "", fmt.Errorf("account from invoked function ARN: %w", err)
		}
		return acct, nil
	}
	if h.CallerAccount == nil {
		return "", errors.New("account: not in Lambda and no caller identity source")
	}
	acct, err := h.CallerAccount(ctx)
	if err != nil {
		return "", fmt.Errorf("caller identity: %w", err)
	}
	return acct, nil
}

// invokedFunctionARN is the ARN the function was invoked with; empty
// outside Lambda.
func invokedFunctionARN(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return lc.InvokedFunctionArn
	}
	return ""
}

// deadlineMargin is DeadlineMargin when set, else the default capped at a
// fifth of the time the invocation has when it starts: with a short function
// timeout a fixed 10 s margin would leave no time to cancel anything.
func (h *Handler) deadlineMargin(ctx context.Context) time.Duration {
	if h.DeadlineMargin > 0 {
		return h.DeadlineMargin
	}
	if deadline, ok := ctx.Deadline(); ok {
		return max(0, min(DefaultDeadlineMargin, time.Until(deadline)/5))
	}
	return DefaultDeadlineMargin
}

func (h *Handler) metricConcurrency() int {
	if h.MetricConcurrency > 0 {
		return h.MetricConcurrency
	}
	return DefaultMetricConcurrency
}

func (h *Handler) maxResponseBytes() int {
	if h.MaxResponseBytes > 0 {
		return h.MaxResponseBytes
	}
	return DefaultMaxResponseBytes
}
