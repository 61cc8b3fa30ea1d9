package handler

// The organization's summary: the state machine hands each page of target
// results to Collect, which adds them to the running totals; on the last
// page it logs the organization's summary and sends one notification.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
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
	// The run's costs, when priced.
	IdleMonthlyCost    *float64 `json:"idleMonthlyCost,omitempty"`
	RemovedMonthlyCost *float64 `json:"removedMonthlyCost,omitempty"`
	// Error and Cause, set when the run completed but failed (a cancel or
	// a shrink failed, the run aborted: RunFailedError): the target counts
	// as failed, and what it did still counts. The state machine's Catch
	// writes the same two fields, alone with the target, for a target
	// that gave no summary (unreachable, timed out).
	Error string `json:"error,omitempty"`
	Cause string `json:"cause,omitempty"`
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

func (c *TargetCounts) add(o TargetCounts) {
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

// Summary is the report's TargetSummary.
func (r *Report) Summary() TargetSummary {
	s := TargetSummary{
		AccountID: r.AccountID, Region: r.Region, RunID: r.RunID, DryRun: r.DryRun,
		TargetCounts: TargetCounts{
			Reservations: r.Counts.Reservations, Idle: r.Counts.Idle,
			ToCancel: r.Counts.Actions[policy.Cancel], ToModify: r.Counts.Actions[policy.Modify], ToMark: r.Counts.Actions[policy.Mark],
			Cancelled: r.Counts.Cancelled, Modified: r.Counts.Modified, Marked: r.Counts.Marked, Unmarked: r.Counts.Unmarked,
		},
		Failed: r.Counts.Failed, NotAttempted: r.Counts.NotAttempted,
	}
	if r.Costs != nil {
		removed := r.Costs.RemovedMonthly
		if r.DryRun {
			removed = r.Costs.WouldRemoveMonthly
		}
		s.IdleMonthlyCost, s.RemovedMonthlyCost = &r.Costs.IdleMonthly, &removed
	}
	return s
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
// totals so far.
type CollectRequest struct {
	Results []json.RawMessage `json:"results"`
	Totals  *OrgTotals        `json:"totals"`
	// Final: this was the last page; log the summary and notify.
	Final bool `json:"final"`

	// items are Results decoded, by validate.
	items []collectItem
}

// OrgTotals are the organization run's running totals.
type OrgTotals struct {
	Targets   int `json:"targets"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// DryRunTargets counts the targets that ran as dry runs.
	DryRunTargets int `json:"dryRunTargets"`

	TargetCounts
	// CancelFailures counts the cancels and shrinks that failed or were
	// not attempted.
	CancelFailures int `json:"cancelFailures"`

	IdleMonthlyCost    float64 `json:"idleMonthlyCost"`
	RemovedMonthlyCost float64 `json:"removedMonthlyCost"`

	// Failures lists the first maxListedFailures failed targets;
	// FailuresOmitted counts the others (each is in the execution's
	// history and in the function's log).
	Failures        []TargetFailure `json:"failures"`
	FailuresOmitted int             `json:"failuresOmitted"`
}

// Bounds of the totals: they travel through the state machine with every
// page, under its 256 KiB payload limit.
const (
	maxListedFailures = 100
	maxCauseBytes     = 300
)

// collectItemFields are the fields of a result: a TargetSummary's, which
// the state machine's failure object shares.
const collectItemFields = "accountId, region, runId, dryRun, reservations, idle, toCancel, toModify, toMark, cancelled, modified, marked, unmarked, failed, notAttempted, idleMonthlyCost, removedMonthlyCost, error, cause"

const orgTotalsFields = "targets, succeeded, failed, dryRunTargets, reservations, idle, toCancel, toModify, toMark, cancelled, modified, marked, unmarked, cancelFailures, idleMonthlyCost, removedMonthlyCost, failures, failuresOmitted"

// collectItem is a result: a summary, or the state machine's failure.
type collectItem = TargetSummary

func (t *OrgTotals) UnmarshalJSON(data []byte) error {
	type plain OrgTotals
	return decodeNested("collect.totals", data, (*plain)(t), orgTotalsFields)
}

// validate decodes the results, once: Collect adds up what it kept.
func (c *CollectRequest) validate() error {
	if c.Results == nil {
		return errors.New(`field "collect.results" is missing; accepted: the list of a page's results (possibly empty)`)
	}
	var errs []error
	c.items = make([]collectItem, 0, len(c.Results))
	for i, raw := range c.Results {
		it, err := decodeResult(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf(`field "collect.results[%d]": %w`, i, err))
		}
		c.items = append(c.items, it)
	}
	return errors.Join(errs...)
}

func decodeResult(raw json.RawMessage) (collectItem, error) {
	var it collectItem
	if err := strictDecode(raw, &it, collectItemFields); err != nil {
		return collectItem{}, err
	}
	t := Target{AccountID: it.AccountID, Region: it.Region}
	if err := t.validate("target"); err != nil {
		return collectItem{}, err
	}
	return it, nil
}

// add adds one result to the totals. A target that failed is listed; if
// it ran (it has a run id), what it did counts too.
func (t *OrgTotals) add(s collectItem) {
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
	if s.DryRun {
		t.DryRunTargets++
	}
	t.TargetCounts.add(s.TargetCounts)
	t.CancelFailures += s.Failed + s.NotAttempted
	if s.IdleMonthlyCost != nil {
		t.IdleMonthlyCost = cents(t.IdleMonthlyCost + *s.IdleMonthlyCost)
	}
	if s.RemovedMonthlyCost != nil {
		t.RemovedMonthlyCost = cents(t.RemovedMonthlyCost + *s.RemovedMonthlyCost)
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

func cents(v float64) float64 { return math.Round(v*100) / 100 }

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

// Collect adds a page of results to the totals. On the last page it writes
// the organization's summary to the audit trail and sends one notification
// to NOTIFY_TOPIC_ARN when a target failed or something happened.
func (h *Handler) Collect(ctx context.Context, req CollectRequest) (*OrgTotals, error) {
	audit := h.Logger.With(zap.String("request_id", h.runID(ctx))).Named(AuditLogger)
	totals := &OrgTotals{}
	if req.Totals != nil {
		*totals = *req.Totals
	}
	if totals.Failures == nil {
		totals.Failures = []TargetFailure{}
	}
	if len(req.items) != len(req.Results) { // not through ParseEvent
		if err := req.validate(); err != nil {
			return nil, &InvalidEventError{Err: err}
		}
	}
	for _, it := range req.items {
		if it.Error != "" {
			audit.Warn("target failed", zap.String("account_id", it.AccountID), zap.String("region", it.Region),
				zap.String("error", it.Error), zap.String("cause", truncate(it.Cause, maxCauseBytes)))
		}
		totals.add(it)
	}
	if !req.Final {
		audit.Info("organization page collected", zap.Int("results", len(req.Results)), zap.Int("targets", totals.Targets))
		return totals, nil
	}
	fields := []zap.Field{zap.Any("totals", totals)}
	if topic := h.Settings.NotifyTopicARN; topic != "" && totals.worthTelling() {
		if err := publish(ctx, h.SNS, topic, orgNotification(totals)); err != nil {
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

// worthTelling: a target failed, or something was (or would be) done.
func (t *OrgTotals) worthTelling() bool {
	return t.Failed > 0 || t.CancelFailures > 0 ||
		t.Cancelled+t.Modified+t.Marked+t.Unmarked > 0 ||
		(t.DryRunTargets > 0 && t.ToCancel+t.ToModify+t.ToMark > 0)
}

// orgNotification renders the organization's summary as one message.
func orgNotification(t *OrgTotals) Notification {
	dry := t.DryRunTargets > 0 && t.DryRunTargets == t.Succeeded
	var b strings.Builder
	subject := fmt.Sprintf("odcr-autocancel organization run: %s targets, %s cancelled, %s shrunk, %s failed",
		noticeThousands(t.Targets), noticeThousands(t.Cancelled), noticeThousands(t.Modified), noticeThousands(t.Failed))
	if dry {
		subject = fmt.Sprintf("[dry run] odcr-autocancel organization run: %s targets, would cancel %s, %s failed",
			noticeThousands(t.Targets), noticeThousands(t.ToCancel), noticeThousands(t.Failed))
		b.WriteString("DRY RUN: nothing was changed. The figures below say what a real run would do.\n\n")
	}
	fmt.Fprintf(&b, "Targets (account, region): %s, %s succeeded, %s failed.\n", noticeThousands(t.Targets), noticeThousands(t.Succeeded), noticeThousands(t.Failed))
	fmt.Fprintf(&b, "Reservations evaluated: %s, idle: %s.\n", noticeThousands(t.Reservations), noticeThousands(t.Idle))
	if dry {
		fmt.Fprintf(&b, "Would cancel: %s. Would shrink: %s. Would mark idle: %s.\n", noticeThousands(t.ToCancel), noticeThousands(t.ToModify), noticeThousands(t.ToMark))
	} else {
		fmt.Fprintf(&b, "Cancelled: %s. Shrunk: %s. Marked idle: %s. Unmarked: %s.\n", noticeThousands(t.Cancelled), noticeThousands(t.Modified), noticeThousands(t.Marked), noticeThousands(t.Unmarked))
		if t.DryRunTargets > 0 {
			fmt.Fprintf(&b, "%s targets ran as dry runs.\n", noticeThousands(t.DryRunTargets))
		}
	}
	if t.CancelFailures > 0 {
		fmt.Fprintf(&b, "Cancels or shrinks that failed or were not attempted: %s (see each target's own notification).\n", noticeThousands(t.CancelFailures))
	}
	if t.IdleMonthlyCost > 0 || t.RemovedMonthlyCost > 0 {
		verb := "Removed"
		if dry {
			verb = "Would remove"
		}
		fmt.Fprintf(&b, "Idle capacity found: $%s per month at On-Demand list prices. %s: $%s per month.\n",
			noticeDollars(t.IdleMonthlyCost), verb, noticeDollars(t.RemovedMonthlyCost))
	}
	if t.Failed > 0 {
		b.WriteString("\nFailed targets (one that could not be reached, TargetError or ReadError, was left untouched):\n")
		for _, f := range t.Failures {
			fmt.Fprintf(&b, "  %s %s: %s: %s\n", f.AccountID, f.Region, noticeOneLineText(f.Error), noticeOneLineText(f.Cause))
		}
		if t.FailuresOmitted > 0 {
			fmt.Fprintf(&b, "  ... and %s more (see the state machine's execution).\n", noticeThousands(t.FailuresOmitted))
		}
	}
	b.WriteString("\nEach target's own notification lists its reservations with the commands to protect or snooze them; the function's log group holds every decision.\n")
	return Notification{
		Subject: noticeASCII(subject, noticeMaxSubject),
		Message: b.String(),
		Attributes: map[string]string{
			noticeAttrDryRun:  fmt.Sprint(dry),
			noticeAttrAccount: "organization",
		},
	}
}

// noticeOneLineText keeps a failure's text on one line.
func noticeOneLineText(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
