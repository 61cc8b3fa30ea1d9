package org

// The organization's message: one notification at the end of an
// organization run, with its totals and the targets that failed.

import (
	"fmt"
	"strings"

	"github.com/odcr-autocancel/odcr-autocancel/notify"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// message renders the organization's summary as one message.
func message(t *Totals) notify.Notification {
	dry := t.DryRun()
	var b strings.Builder
	subject := fmt.Sprintf("odcr-autocancel organization run: %s targets, %s cancelled, %s shrunk, %s failed",
		report.Thousands(t.Targets), report.Thousands(t.Cancelled), report.Thousands(t.Modified), report.Thousands(t.Failed))
	if dry {
		subject = fmt.Sprintf("[dry run] odcr-autocancel organization run: %s targets, would cancel %s, %s failed",
			report.Thousands(t.Targets), report.Thousands(t.ToCancel), report.Thousands(t.Failed))
		b.WriteString("DRY RUN: nothing was changed. The figures below say what a real run would do.\n\n")
	}
	fmt.Fprintf(&b, "Targets (account, region): %s, %s succeeded, %s failed.\n", report.Thousands(t.Targets), report.Thousands(t.Succeeded), report.Thousands(t.Failed))
	fmt.Fprintf(&b, "Reservations evaluated: %s, idle: %s.\n", report.Thousands(t.Reservations), report.Thousands(t.Idle))
	if dry {
		fmt.Fprintf(&b, "Would cancel: %s. Would shrink: %s. Would mark idle: %s.\n", report.Thousands(t.ToCancel), report.Thousands(t.ToModify), report.Thousands(t.ToMark))
	} else {
		fmt.Fprintf(&b, "Cancelled: %s. Shrunk: %s. Marked idle: %s. Unmarked: %s.\n", report.Thousands(t.Cancelled), report.Thousands(t.Modified), report.Thousands(t.Marked), report.Thousands(t.Unmarked))
		if t.DryRunTargets > 0 {
			fmt.Fprintf(&b, "%s targets ran as dry runs.\n", report.Thousands(t.DryRunTargets))
		}
	}
	if t.CancelFailures > 0 {
		fmt.Fprintf(&b, "Cancels or shrinks that failed or were not attempted: %s (see each target's own notification).\n", report.Thousands(t.CancelFailures))
	}
	if t.Problems > 0 || t.InsufficientData > 0 {
		fmt.Fprintf(&b, "Kept for want of data: %s reservations. Problems reported by the targets: %s (see each target's report).\n",
			report.Thousands(t.InsufficientData), report.Thousands(t.Problems))
	}
	if t.OutOfTime > 0 {
		fmt.Fprintf(&b, "Not measured for lack of time: %s reservations (part of those kept for want of data): raise FunctionTimeout or the GetMetricData quota; see docs/performance.md.\n",
			report.Thousands(t.OutOfTime))
	}
	if t.IdleMonthlyCost > 0 || t.RemovedMonthlyCost > 0 || t.WouldRemoveMonthlyCost > 0 {
		fmt.Fprintf(&b, "Idle capacity found: $%s per month at On-Demand list prices.\n", notify.Dollars(t.IdleMonthlyCost))
		if !dry {
			fmt.Fprintf(&b, "Removed: $%s per month.\n", notify.Dollars(t.RemovedMonthlyCost))
		}
		if t.DryRunTargets > 0 {
			fmt.Fprintf(&b, "Would remove, in a real run of the dry-run targets: $%s per month.\n", notify.Dollars(t.WouldRemoveMonthlyCost))
		}
	}
	if t.Failed > 0 {
		b.WriteString("\nFailed targets (one that could not be reached, TargetError or ReadError, was left untouched):\n")
		for _, f := range t.Failures {
			fmt.Fprintf(&b, "  %s %s: %s: %s\n", f.AccountID, f.Region, oneLine(f.Error), oneLine(f.Cause))
		}
		if t.FailuresOmitted > 0 {
			fmt.Fprintf(&b, "  ... and %s more (see the state machine's execution).\n", report.Thousands(t.FailuresOmitted))
		}
	}
	if len(t.EvaluatedNothing) > 0 {
		b.WriteString("\nTargets that evaluated nothing (every eligible reservation kept for want of data: check that the member role there may read CloudWatch and EC2):\n")
		for _, tg := range t.EvaluatedNothing {
			fmt.Fprintf(&b, "  %s %s\n", tg.AccountID, tg.Region)
		}
		if t.EvaluatedNothingOmitted > 0 {
			fmt.Fprintf(&b, "  ... and %s more (see each target's report).\n", report.Thousands(t.EvaluatedNothingOmitted))
		}
	}
	b.WriteString("\nEach target's own notification lists its reservations with the commands to protect or snooze them; the function's log group holds every decision.\n")
	return notify.Notification{
		Subject: notify.Subject(subject),
		Message: b.String(),
		Attributes: map[string]string{
			notify.AttrDryRun:  fmt.Sprint(dry),
			notify.AttrAccount: "organization",
		},
	}
}

// oneLine keeps a failure's text on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// DryRun tells whether the organization run was a dry run: every target
// that ran was one, whatever failed.
func (t *Totals) DryRun() bool {
	return t.DryRunTargets > 0 && t.DryRunTargets == t.Ran
}
