// Package handler runs the function once per invocation, in one account and
// region: it reads the event and the settings, reads the account's capacity
// reservations, their utilization, the stopped instances that need them,
// their shares and what would launch into them (package dependents: launch
// templates, Auto Scaling groups), asks package policy for a decision on
// each, logs the whole plan, then (unless the run is a dry run) writes the
// grace period's marks and cancels or shrinks what is due, after checking
// each once more. It
// returns the run's report (package report), tells the owners (package
// notify) and answers the organization's requests by calling package org.
//
// Handler.runRequest tells the story of one run; each step is a method of
// run, in a file of its own.
package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/emf"
	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/marks"
	"github.com/odcr-autocancel/odcr-autocancel/notify"
	"github.com/odcr-autocancel/odcr-autocancel/org"
	"github.com/odcr-autocancel/odcr-autocancel/price"
	"github.com/odcr-autocancel/odcr-autocancel/report"
	"github.com/odcr-autocancel/odcr-autocancel/utilization"
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
	EC2        awsapi.EC2
	CloudWatch awsapi.CloudWatch
	// RAM lists the reservations this account shares out; without it
	// every reservation's sharing is unknown, and none is cancelled.
	RAM awsapi.RAM
	// AutoScaling lists the Auto Scaling groups that may launch into a
	// reservation (main makes it on first use, awsapi.LazyAutoScaling);
	// without it nothing is cancelled or shrunk.
	AutoScaling awsapi.AutoScaling
	// Pricing reads On-Demand prices for the cost figures (PRICING=on);
	// without it the figures are left out.
	Pricing price.API
	// SNS publishes the notification to NOTIFY_TOPIC_ARN; Region is the
	// region the run acts in, for the notification and the prices.
	SNS    notify.Publisher
	Region string
	// Targets reaches other accounts (through the member role) and other
	// regions, for a run request with a target and for REGIONS=all;
	// Organizations lists the accounts of ACCOUNTS=organization.
	Targets       org.Connector
	Organizations org.OrganizationsAPI
	// KMS signs and checks marks with the key MARK_KEY_ID names, with the
	// function's own credentials whatever the target.
	KMS      marks.MAC
	Settings Settings
	Logger   *zap.Logger
	Now      func() time.Time
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
	// Unpaced, when set, reads metrics without pacing them under
	// CloudWatch's quotas (benchmarks compare with it).
	Unpaced bool
	// MetricsPerCall, when positive, caps the reservations measured per
	// GetMetricData call below what CloudWatch's limits allow (250 at most).
	// Zero is right for production; benchmarks set 1 for the naive baseline.
	MetricsPerCall int
	// Retries, when set, counts the SDK's retries for the report; main wraps
	// the clients' retryer with it.
	Retries *awsapi.RetryCounter
	// Progress, when set, is told how far a run is: the step ("listed",
	// "measured", "cancelled", "shrunk") and how many of how many. The
	// command line shows it on a terminal; Lambda leaves it unset.
	Progress func(step string, done, total int)
	// MaxResponseBytes bounds the JSON report Invoke returns; Lambda refuses
	// a synchronous response over 6 MB.
	MaxResponseBytes int

	// lister lists the organization's targets; made once, it keeps the
	// accounts and regions between the pages of an execution.
	listerOnce sync.Once
	lister     *org.Lister
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
	rep, err := h.runRequest(ctx, req, kind, err)
	var failed *RunFailedError
	if rep != nil && req.Report == ReportSummary && errors.As(err, &failed) {
		// The run completed but failed: the state machine gets what it
		// did, and why it failed, rather than an error that would lose
		// its counts.
		sum := org.Summarize(rep)
		sum.Fail("RunFailedError", err)
		return encode(sum, h.seal(ctx, &sum))
	}
	if err != nil {
		return nil, err
	}
	if req.Report == ReportSummary {
		sum := org.Summarize(rep)
		return encode(sum, h.seal(ctx, &sum))
	}
	// Every line is in the logs already; a response too large leaves out
	// detail, step by step, rather than fail the invocation.
	out, err := rep.Fit(h.maxResponseBytes())
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
func (h *Handler) Run(ctx context.Context, payload []byte) (*report.Report, error) {
	req, kind, err := ParseEvent(payload)
	return h.runRequest(ctx, req, kind, err)
}

// runRequest is Run once the payload is parsed; parseErr is ParseEvent's
// error, logged and returned as the run's.
func (h *Handler) runRequest(ctx context.Context, req Request, kind string, parseErr error) (*report.Report, error) {
	r, rep, err := h.start(ctx, req, kind, parseErr) // settings, identity, target, clients
	if err != nil {
		return nil, err
	}
	ctx, cancel := r.withinMargin(ctx)
	defer cancel()
	plan, err := r.evaluate(ctx, req.ReservationIDs, rep) // read and decide; nothing changed
	if err != nil {
		return nil, r.readFailed(err)
	}
	if r.settings.Pricing {
		r.estimateCosts(ctx, h.Pricing, plan.Decisions)
	}
	r.logPlan(plan) // the plan is in the log before any change
	decisions := r.act(ctx, plan, rep)
	rep.Costs = report.CostsOf(decisions, rep)
	// Once everything is done: a failed notification loses nothing.
	notifyErr := r.notify(ctx, h.SNS, plan, decisions, rep)
	return r.finish(rep, plan, decisions, notifyErr)
}

// ListTargets returns the page of organization targets after req.After
// (see org.Lister).
func (h *Handler) ListTargets(ctx context.Context, req org.ListTargetsRequest) (*org.TargetPage, error) {
	runID := h.runID(ctx)
	audit := h.Logger.With(zap.String("request_id", runID)).Named(AuditLogger)
	home, err := h.home(ctx)
	if err != nil {
		audit.Error("targets not listed", zap.Error(err))
		return nil, err
	}
	return h.targetLister().Page(ctx, home, runID, req.After, audit)
}

// targetLister is the Handler's org.Lister, made on first use.
func (h *Handler) targetLister() *org.Lister {
	h.listerOnce.Do(func() {
		h.lister = &org.Lister{Config: h.Settings.Config, Organizations: h.Organizations, Connector: h.Targets,
			Now: func() time.Time { return h.Now() }}
	})
	return h.lister
}

// Collect adds a page of the organization's results to the totals (see
// org.Collect); the last page notifies NOTIFY_TOPIC_ARN.
func (h *Handler) Collect(ctx context.Context, req org.CollectRequest) (*org.Totals, error) {
	audit := h.Logger.With(zap.String("request_id", h.runID(ctx))).Named(AuditLogger)
	// The organization's own figures, for its alarm (failed targets are
	// answers to the state machine, not errors of the function), before
	// the summary line, as a run writes its record before "run finished".
	record := func(t *org.Totals) {
		audit.Info(emf.Message, emf.OrganizationRecord(emf.OrganizationFigures{
			Targets: t.Targets, Failed: t.Failed, EvaluatedNothing: len(t.EvaluatedNothing) + t.EvaluatedNothingOmitted,
			DryRun: t.DryRun(), At: h.Now(),
		}, emf.FunctionName())...)
	}
	var sealer org.Sealer
	if s := h.sealer(); s != nil {
		sealer = s
	}
	totals, err := org.Collect(ctx, req, h.Settings.NotifyTopicARN, h.SNS, sealer, audit, record)
	if errors.Is(err, org.ErrNotSealed) {
		err = &InvalidEventError{Err: err}
	}
	return totals, err
}

// sealer signs and checks the organization's summaries with the key that
// signs marks; nil without one (a preview outside Lambda).
func (h *Handler) sealer() *marks.Signer {
	if h.KMS == nil || h.Settings.MarkKeyID == "" {
		return nil
	}
	return &marks.Signer{KMS: h.KMS, KeyID: h.Settings.MarkKeyID}
}

// seal signs a target's summary for Collect (see org.Sealer), when there
// is a key.
func (h *Handler) seal(ctx context.Context, sum *org.TargetSummary) error {
	if s := h.sealer(); s != nil {
		return sum.Seal(ctx, s)
	}
	return nil
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

// home is the function's own account, region and partition: the account
// from the invoked function's ARN in Lambda, from the caller identity
// outside. Only its own account's reservations may be cancelled.
func (h *Handler) home(ctx context.Context) (org.Home, error) {
	account, err := h.account(ctx)
	if err != nil {
		return org.Home{}, err
	}
	return org.Home{Target: org.Target{AccountID: account, Region: h.Region}, Partition: h.partition(ctx)}, nil
}

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

// partition is the AWS partition the function runs in.
func (h *Handler) partition(ctx context.Context) string {
	if arn := invokedFunctionARN(ctx); arn != "" {
		if p, _, ok := strings.Cut(strings.TrimPrefix(arn, "arn:"), ":"); ok && p != "" {
			return p
		}
	}
	return org.PartitionOf(h.Region)
}

// invokedFunctionARN is the ARN the function was invoked with; empty
// outside Lambda.
func invokedFunctionARN(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return lc.InvokedFunctionArn
	}
	return ""
}

// clientsFor returns the clients of the run's target: the Handler's own
// for its own account and region, else through the member role (org.Reach).
func (h *Handler) clientsFor(ctx context.Context, home org.Home, t org.Target, session string) (awsapi.Clients, error) {
	if home.Is(t) {
		return awsapi.Clients{EC2: h.EC2, CloudWatch: h.CloudWatch, RAM: h.RAM, AutoScaling: h.AutoScaling}, nil
	}
	return org.Reach(ctx, h.Targets, h.Settings.Config, home, t, session)
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

// pacer paces one run's metric reads at 90 % of the account's quotas.
func (h *Handler) pacer(s Settings) *utilization.Pacer {
	if h.Unpaced {
		return nil
	}
	return utilization.NewPacer(s.metricQuotas(), utilization.PacePercent)
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
