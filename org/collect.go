package org

// The organization's summary: the state machine hands each page of target
// results to Collect, which adds them to the running totals; on the last
// page it logs the organization's summary and sends one notification.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/internal/strictjson"
	"github.com/odcr-autocancel/odcr-autocancel/notify"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// TargetSummary is the response of a target run with "report": "summary":
// the counts of its report, small enough for the state machine to keep
// hundreds per page.
type TargetSummary struct {
	AccountID string `json:"accountId"`
	Region    string `json:"region"`
	RunID     string `json:"runId"`
	DryRun    bool   `json:"dryRun"`
	TargetCounts
	// Failed and NotAttempted count the cancels and shrinks that failed
	// or were not attempted.
	Failed       int `json:"failed"`
	NotAttempted int `json:"notAttempted"`
	// The run's costs, when priced: what its cancels and shrinks removed,
	// and, in a dry run, what they would remove. Two figures, never one
	// standing for the other.
	IdleMonthlyCost        *float64 `json:"idleMonthlyCost,omitempty"`
	RemovedMonthlyCost     *float64 `json:"removedMonthlyCost,omitempty"`
	WouldRemoveMonthlyCost *float64 `json:"wouldRemoveMonthlyCost,omitempty"`
	// What the run could judge: its eligible reservations, those kept
	// insufficient-data, and its problems. A run whose eligible
	// reservations were all kept insufficient-data evaluated nothing (a
	// member role that cannot read CloudWatch, say).
	Eligible         int `json:"eligible,omitempty"`
	InsufficientData int `json:"insufficientData,omitempty"`
	Problems         int `json:"problems,omitempty"`
	// OutOfTime counts those of InsufficientData not read at all because
	// the invocation's time would not allow it.
	OutOfTime int `json:"outOfTime,omitempty"`
	// Error and Cause, set when the run completed but failed (a cancel or
	// a shrink failed, the run aborted: RunFailedError): the target counts
	// as failed, and what it did still counts. The state machine's Catch
	// writes the same two fields, alone with the target, for a target
	// that gave no summary (unreachable, timed out).
	Error string `json:"error,omitempty"`
	Cause string `json:"cause,omitempty"`
	// Signature seals the summary (Seal): Collect refuses a run's summary
	// without a signature that holds.
	Signature string `json:"signature,omitempty"`
}

// TargetCounts are the counts of a target's run, and their sums over the
// organization.
type TargetCounts struct {
	Reservations int `json:"reservations"`
	Idle         int `json:"idle"`
	// ToCancel, ToModify and ToMark are what the plan holds: what a dry
	// run would do.
	ToCancel  int `json:"toCancel"`
	ToModify  int `json:"toModify"`
	ToMark    int `json:"toMark"`
	Cancelled int `json:"cancelled"`
	Modified  int `json:"modified"`
	Marked    int `json:"marked"`
	Unmarked  int `json:"unmarked"`
}

// Add adds o to c.
func (c *TargetCounts) Add(o TargetCounts) {
	c.Reservations += o.Reservations
	c.Idle += o.Idle
	c.ToCancel += o.ToCancel
	c.ToModify += o.ToModify
	c.ToMark += o.ToMark
	c.Cancelled += o.Cancelled
	c.Modified += o.Modified
	c.Marked += o.Marked
	c.Unmarked += o.Unmarked
}

// Summarize is a report's TargetSummary.
func Summarize(r *report.Report) TargetSummary {
	s := TargetSummary{
		AccountID: r.AccountID, Region: r.Region, RunID: r.RunID, DryRun: r.DryRun,
		TargetCounts: TargetCounts{
			Reservations: r.Counts.Reservations, Idle: r.Counts.Idle,
			ToCancel: r.Counts.Actions[policy.Cancel], ToModify: r.Counts.Actions[policy.Modify], ToMark: r.Counts.Actions[policy.Mark],
			Cancelled: r.Counts.Cancelled, Modified: r.Counts.Modified, Marked: r.Counts.Marked, Unmarked: r.Counts.Unmarked,
		},
		Failed: r.Counts.Failed, NotAttempted: r.Counts.NotAttempted,
		Eligible: r.Counts.Eligible, InsufficientData: r.Counts.Reasons[policy.ReasonInsufficientData],
		Problems: len(r.Problems) + r.ProblemsOmitted, OutOfTime: r.Counts.OutOfTime,
	}
	if c := r.Costs; c != nil {
		idle, removed := c.IdleMonthly, c.RemovedMonthly
		s.IdleMonthlyCost, s.RemovedMonthlyCost = &idle, &removed
		if r.DryRun {
			would := c.WouldRemoveMonthly
			s.WouldRemoveMonthlyCost = &would
		}
	}
	return s
}

// evaluatedNothing tells whether a run had eligible reservations and kept
// every one of them for want of data.
func (s TargetSummary) evaluatedNothing() bool {
	return s.RunID != "" && s.Eligible > 0 && s.InsufficientData >= s.Eligible
}

// Fail marks the summary of a run that completed but failed with the
// error's type name and message (cut to what the totals keep).
func (s *TargetSummary) Fail(errorType string, err error) {
	s.Error, s.Cause = errorType, truncate(err.Error(), maxCauseBytes)
}

// TargetFailure is a target that failed: the state machine's record of the
// function's error (or of Lambda's).
type TargetFailure struct {
	AccountID string `json:"accountId"`
	Region    string `json:"region"`
	Error     string `json:"error"`
	Cause     string `json:"cause,omitempty"`
}

// CollectRequest is one page of the state machine's results, with the
// totals so far. Its JSON is decoded strictly, every result checked, once.
type CollectRequest struct {
	// Results are the page's results: a target's summary, or the state
	// machine's failure object (the target, error and cause).
	Results []TargetSummary
	Totals  *Totals
	// Final: this was the last page; log the summary and notify.
	Final bool
}

// collectWire is a CollectRequest as the state machine sends it.
type collectWire struct {
	Results []json.RawMessage `json:"results"`
	Totals  *Totals           `json:"totals"`
	Final   bool              `json:"final"`
}

func (c *CollectRequest) UnmarshalJSON(data []byte) error {
	var w collectWire
	if err := strictjson.DecodeField("collect", data, &w); err != nil {
		return err
	}
	if w.Results == nil {
		return strictjson.AsIs(errors.New(`field "collect.results" is missing; accepted: the list of a page's results (possibly empty)`))
	}
	var errs []error
	results := make([]TargetSummary, 0, len(w.Results))
	for i, raw := range w.Results {
		it, err := decodeResult(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf(`field "collect.results[%d]": %w`, i, err))
		}
		results = append(results, it)
	}
	if err := errors.Join(errs...); err != nil {
		return strictjson.AsIs(err)
	}
	*c = CollectRequest{Results: results, Totals: w.Totals, Final: w.Final}
	return nil
}

// Totals are the organization run's running totals.
type Totals struct {
	Targets   int `json:"targets"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// Ran counts the targets that ran (failed or not); DryRunTargets those
	// that ran as dry runs.
	Ran           int `json:"ran"`
	DryRunTargets int `json:"dryRunTargets"`

	TargetCounts
	// CancelFailures counts the cancels and shrinks that failed or were
	// not attempted.
	CancelFailures int `json:"cancelFailures"`

	IdleMonthlyCost        float64 `json:"idleMonthlyCost"`
	RemovedMonthlyCost     float64 `json:"removedMonthlyCost"`
	WouldRemoveMonthlyCost float64 `json:"wouldRemoveMonthlyCost"`
	// Problems and InsufficientData add up the targets' own.
	Problems         int `json:"problems"`
	InsufficientData int `json:"insufficientData"`
	// OutOfTime adds up the reservations the targets could not read in
	// their time (part of InsufficientData).
	OutOfTime int `json:"outOfTime,omitempty"`
	// EvaluatedNothing lists the first maxListedFailures targets that ran
	// but could judge none of their eligible reservations;
	// EvaluatedNothingOmitted counts the others.
	EvaluatedNothing        []Target `json:"evaluatedNothing,omitempty"`
	EvaluatedNothingOmitted int      `json:"evaluatedNothingOmitted,omitempty"`

	// Failures lists the first maxListedFailures failed targets;
	// FailuresOmitted counts the others (each is in the execution's
	// history and in the function's log).
	Failures        []TargetFailure `json:"failures"`
	FailuresOmitted int             `json:"failuresOmitted"`

	// Signature seals the totals between two pages (Seal).
	Signature string `json:"signature,omitempty"`
}

// Bounds of the totals: they travel through the state machine with every
// page, under its 256 KiB payload limit.
const (
	maxListedFailures = 100
	maxCauseBytes     = 300
)

func (t *Totals) UnmarshalJSON(data []byte) error {
	type plain Totals
	return strictjson.DecodeField("collect.totals", data, (*plain)(t))
}

// decodeResult decodes one result strictly (a summary's fields, which the
// state machine's failure object shares) and checks its target.
func decodeResult(raw json.RawMessage) (TargetSummary, error) {
	var it TargetSummary
	if err := strictjson.Decode(raw, &it); err != nil {
		return TargetSummary{}, err
	}
	t := Target{AccountID: it.AccountID, Region: it.Region}
	if err := t.Validate("target"); err != nil {
		return TargetSummary{}, err
	}
	return it, nil
}

// add adds one result to the totals. A target that failed is listed; if
// it ran (it has a run id), what it did counts too.
func (t *Totals) add(s TargetSummary) {
	t.Targets++
	switch {
	case s.Error == "":
		t.Succeeded++
	case len(t.Failures) >= maxListedFailures:
		t.Failed++
		t.FailuresOmitted++
	default:
		t.Failed++
		t.Failures = append(t.Failures, TargetFailure{
			AccountID: s.AccountID, Region: s.Region,
			Error: s.Error, Cause: truncate(causeText(s.Cause), maxCauseBytes),
		})
	}
	if s.RunID == "" {
		return
	}
	t.Ran++
	if s.DryRun {
		t.DryRunTargets++
	}
	t.Problems += s.Problems
	t.InsufficientData += s.InsufficientData
	t.OutOfTime += s.OutOfTime
	if s.evaluatedNothing() {
		if len(t.EvaluatedNothing) < maxListedFailures {
			t.EvaluatedNothing = append(t.EvaluatedNothing, Target{AccountID: s.AccountID, Region: s.Region})
		} else {
			t.EvaluatedNothingOmitted++
		}
	}
	t.TargetCounts.Add(s.TargetCounts)
	t.CancelFailures += s.Failed + s.NotAttempted
	if s.IdleMonthlyCost != nil {
		t.IdleMonthlyCost = report.Cents(t.IdleMonthlyCost + *s.IdleMonthlyCost)
	}
	if s.RemovedMonthlyCost != nil {
		t.RemovedMonthlyCost = report.Cents(t.RemovedMonthlyCost + *s.RemovedMonthlyCost)
	}
	if s.WouldRemoveMonthlyCost != nil {
		t.WouldRemoveMonthlyCost = report.Cents(t.WouldRemoveMonthlyCost + *s.WouldRemoveMonthlyCost)
	}
}

// causeText is the message of a Lambda function error's cause: the JSON
// object {"errorMessage": ..., "errorType": ...} Step Functions records,
// which the state machine cuts to 300 characters (so that it may no longer
// parse). Any other cause is kept as it is.
func causeText(cause string) string {
	var e struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal([]byte(cause), &e) == nil && e.ErrorMessage != "" {
		return e.ErrorMessage
	}
	const prefix = `{"errorMessage":"`
	if rest, ok := strings.CutPrefix(cause, prefix); ok {
		if msg, _, found := strings.Cut(rest, `","errorType"`); found {
			rest = msg
		}
		return strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(rest)
	}
	return cause
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// Collect adds a page of results to the totals. On the last page it calls
// final (when set) with the totals, writes the organization's summary to
// audit and sends one notification to topicARN (when set) if a target
// failed or something happened.
//
// With a sealer, every run's summary and the totals must carry the
// function's signature (see Seal): a request with one that does not hold
// is refused before anything is counted or published, and the totals
// returned for the next page are sealed.
func Collect(ctx context.Context, req CollectRequest, topicARN string, sns notify.Publisher, sealer Sealer, audit *zap.Logger, final func(*Totals)) (*Totals, error) {
	if sealer != nil {
		if err := checkSeals(ctx, req, sealer); err != nil {
			audit.Error("collect refused; nothing counted or published", zap.Error(err))
			return nil, err
		}
	}
	totals := &Totals{}
	if req.Totals != nil {
		*totals = *req.Totals
		totals.Signature = ""
	}
	if totals.Failures == nil {
		totals.Failures = []TargetFailure{}
	}
	for _, it := range req.Results {
		if it.Error != "" {
			audit.Warn("target failed", zap.String("account_id", it.AccountID), zap.String("region", it.Region),
				zap.String("error", it.Error), zap.String("cause", truncate(it.Cause, maxCauseBytes)))
		}
		totals.add(it)
	}
	if !req.Final {
		audit.Info("organization page collected", zap.Int("results", len(req.Results)), zap.Int("targets", totals.Targets))
		if sealer != nil {
			if err := totals.Seal(ctx, sealer); err != nil {
				return nil, err
			}
		}
		return totals, nil
	}
	if final != nil {
		final(totals)
	}
	fields := []zap.Field{zap.Any("totals", totals)}
	if topicARN != "" && totals.worthTelling() {
		if err := notify.Publish(ctx, sns, topicARN, message(totals)); err != nil {
			audit.Error("organization run finished; notification not sent", append(fields, zap.Error(err))...)
			return nil, err
		}
		fields = append(fields, zap.Bool("notified", true))
	}
	if totals.Failed > 0 {
		audit.Error("organization run finished with failed targets", fields...)
		return totals, nil
	}
	audit.Info("organization run finished", fields...)
	return totals, nil
}

// worthTelling: a target failed or evaluated nothing, or something was (or
// would be) done.
func (t *Totals) worthTelling() bool {
	return t.Failed > 0 || t.CancelFailures > 0 || len(t.EvaluatedNothing) > 0 ||
		t.Cancelled+t.Modified+t.Marked+t.Unmarked > 0 ||
		(t.DryRunTargets > 0 && t.ToCancel+t.ToModify+t.ToMark > 0)
}
