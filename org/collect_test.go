package org

import (
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
		Targets: 340, Succeeded: 338, Failed: 2,
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
