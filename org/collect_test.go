package org

import (
	"strings"
	"testing"

	"github.com/odcr-autocancel/odcr-autocancel/internal/testsupport"
	"github.com/odcr-autocancel/odcr-autocancel/notify"
)

// The failure's cause reads as the function's message, whole or cut.
func TestCauseText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"errorMessage":"target 1/us-east-1 unreachable","errorType":"TargetError"}`, "target 1/us-east-1 unreachable"},
		{`{"errorMessage":"run failed: 2 cancels \"failed\": cr-1, cr-`, `run failed: 2 cancels "failed": cr-1, cr-`},
		{`{"errorMessage":"assume role","errorType":"TargetError","stackTr`, "assume role"},
		{"Rate exceeded", "Rate exceeded"},
	} {
		if got := causeText(tc.in); got != tc.want {
			t.Errorf("causeText(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// sampleTotals is a realistic organization run: the sample of
// docs/organization.md.
func sampleTotals() *Totals {
	return &Totals{
		Targets: 340, Succeeded: 338, Failed: 2, Ran: 338,
		InsufficientData: 12, Problems: 2,
		EvaluatedNothing: []Target{{AccountID: "555566667777", Region: "ca-central-1"}},
		TargetCounts: TargetCounts{Reservations: 4127, Idle: 31, ToCancel: 9, ToModify: 4, ToMark: 18,
			Cancelled: 9, Modified: 4, Marked: 18, Unmarked: 3},
		CancelFailures:  1,
		IdleMonthlyCost: 48211.37, RemovedMonthlyCost: 9120.5,
		Failures: []TargetFailure{
			{AccountID: "444455556666", Region: "eu-west-1", Error: "TargetError",
				Cause: "target 444455556666/eu-west-1 unreachable; nothing done: assume role arn:aws:iam::444455556666:role/odcr-autocancel-member: operation error STS: AssumeRole, https response error StatusCode: 403, api error AccessDenied: not authorized to perform sts:AssumeRole"},
			{AccountID: "777788889999", Region: "ap-southeast-2", Error: "Lambda.Unknown",
				Cause: "The cause could not be determined because Lambda did not return an error type. Returned payload: {\"errorMessage\":\"2026-11-30T06:14:55.120Z 6f1d Task timed out after 300.00 seconds\"}"},
		},
	}
}

// The organization's message, as docs/organization.md shows it.
func TestOrgNotificationGolden(t *testing.T) {
	n := message(sampleTotals())
	got := n.String()
	testsupport.Golden(t, "notification-organization.golden", got)
	testsupport.DocShows(t, "docs/organization.md", "```\n"+got+"```\n",
		"the organization's sample message (org/testdata/notification-organization.golden) in a code block")
	if len(n.Subject) > notify.MaxSubject || len(n.Message) > notify.MaxMessageBytes {
		t.Errorf("subject %d bytes, message %d bytes: over SNS's limits", len(n.Subject), len(n.Message))
	}
}

func costOf(v float64) *float64 { return &v }

// Safety III, item 4: the organization's message says what happened. A dry
// run is labelled a dry run when every target that ran was a dry run,
// whatever failed; what real runs removed and what dry runs would remove
// are separate figures and lines; a target that evaluated nothing (every
// eligible reservation kept for want of data) is named.
func TestOrganizationMessageSaysWhatHappened(t *testing.T) {
	dry := func(account string, failed bool) TargetSummary {
		s := TargetSummary{AccountID: account, Region: "us-east-1", RunID: "r-" + account, DryRun: true,
			TargetCounts: TargetCounts{Reservations: 4, Idle: 1, ToCancel: 1}, Eligible: 3, WouldRemoveMonthlyCost: costOf(5)}
		if failed {
			s.Error, s.Cause = "RunFailedError", "run failed: aborted"
		}
		return s
	}
	unreachable := TargetSummary{AccountID: "999999999999", Region: "us-east-1", Error: "TargetError", Cause: "assume role: AccessDenied"}

	totals := &Totals{}
	for _, s := range []TargetSummary{dry("111111111111", false), dry("222222222222", true), unreachable} {
		totals.add(s)
	}
	n := message(totals)
	if totals.Ran != 2 || n.Attributes[notify.AttrDryRun] != "true" || !strings.HasPrefix(n.Subject, "[dry run]") || !strings.HasPrefix(n.Message, "DRY RUN") {
		t.Errorf("every target that ran was a dry run (one failed): ran %d, subject %q, dry_run %q", totals.Ran, n.Subject, n.Attributes[notify.AttrDryRun])
	}

	mixed := &Totals{}
	real := TargetSummary{AccountID: "333333333333", Region: "eu-west-1", RunID: "r-3", IdleMonthlyCost: costOf(10), RemovedMonthlyCost: costOf(10),
		TargetCounts: TargetCounts{Reservations: 2, Idle: 1, Cancelled: 1}, Eligible: 2}
	blind := TargetSummary{AccountID: "444444444444", Region: "eu-west-1", RunID: "r-4", TargetCounts: TargetCounts{Reservations: 5},
		Eligible: 5, InsufficientData: 5, Problems: 1, OutOfTime: 3}
	for _, s := range []TargetSummary{real, dry("111111111111", false), blind} {
		mixed.add(s)
	}
	n = message(mixed)
	if mixed.RemovedMonthlyCost != 10 || mixed.WouldRemoveMonthlyCost != 5 {
		t.Errorf("removed %v, would remove %v: want 10 and 5, apart", mixed.RemovedMonthlyCost, mixed.WouldRemoveMonthlyCost)
	}
	for _, want := range []string{"Removed: $10.00 per month.", "Would remove, in a real run of the dry-run targets: $5.00 per month.",
		"Targets that evaluated nothing", "  444444444444 eu-west-1\n", "Kept for want of data: 5 reservations. Problems reported by the targets: 1",
		"Not measured for lack of time: 3 reservations"} {
		if !strings.Contains(n.Message, want) {
			t.Errorf("message lacks %q:\n%s", want, n.Message)
		}
	}
	if mixed.OutOfTime != 3 {
		t.Errorf("out of time %d, want 3", mixed.OutOfTime)
	}
	if n.Attributes[notify.AttrDryRun] != "false" || len(mixed.EvaluatedNothing) != 1 || !mixed.worthTelling() {
		t.Errorf("dry_run %q, evaluated nothing %v", n.Attributes[notify.AttrDryRun], mixed.EvaluatedNothing)
	}
}
