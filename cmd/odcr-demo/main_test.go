package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/internal/demo"
	"github.com/odcr-autocancel/odcr-autocancel/internal/testsupport"
	"github.com/odcr-autocancel/odcr-autocancel/org"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// demoNow is the fixed clock of the tests: the same table every time.
var demoNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func runDemo(t *testing.T, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(args, &out, &errb, demoNow); err != nil {
		t.Fatalf("odcr-demo %v: %v\n%s", args, err, errb.String())
	}
	return out.Bytes()
}

func demoReport(t *testing.T, args ...string) report.Report {
	t.Helper()
	var r report.Report
	if err := json.Unmarshal(runDemo(t, append(args, "-output", "json")...), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// The dry run's table, as a newcomer sees it, is the golden file.
func TestDemoTable(t *testing.T) {
	golden(t, "demo-table.golden", runDemo(t, "-output", "table"))
}

// golden compares got with testdata/name (rewrites it with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testsupport.Golden(t, name, string(got))
}

// notShown are the reason codes the simulated account does not produce, and
// why: they need settings the demo does not deploy, or a change during the
// run.
var notShown = map[policy.Reason]string{
	policy.ReasonMissingRequiredTag:    "REQUIRED_TAG is not set",
	policy.ReasonExcludedInstanceType:  "INSTANCE_TYPES is not set",
	policy.ReasonExcludedZone:          "AVAILABILITY_ZONES is not set",
	policy.ReasonIdleShareExceeded:     "the guard would stop the whole demo",
	policy.ReasonChangedSinceEvaluated: "nothing changes during the run",
	policy.ReasonMarkUnverified:        "KMS answers every check of the demo's marks",
	policy.ReasonInCommitment:          "every commitment of the simulated account has its end date",
	policy.ReasonReferrersUnknown:      "the demo's launch templates and Auto Scaling groups can be read",
}

// The dry run shows every other rule at work, each on its reservation.
func TestDemoShowsEveryRule(t *testing.T) {
	r := demoReport(t)
	if !r.DryRun || len(r.Cancelled)+len(r.Marked)+len(r.Modified) != 0 {
		t.Fatalf("a dry run changed something: %+v", r)
	}
	seen := map[policy.Reason]bool{}
	for _, d := range r.Decisions {
		seen[d.Reason] = true
	}
	for _, reason := range policy.Reasons {
		if _, skip := notShown[reason]; !skip && !seen[reason] {
			t.Errorf("the demo shows no %s", reason)
		}
	}
	for _, a := range []policy.Action{policy.Cancel, policy.Mark, policy.Modify, policy.Keep} {
		if r.Counts.Actions[a] == 0 {
			t.Errorf("the demo shows no %s", a)
		}
	}
	if len(r.Decisions) != len(demo.Seeds(demoNow)) {
		t.Errorf("%d decisions for %d reservations", len(r.Decisions), len(demo.Seeds(demoNow)))
	}
}

// -apply runs for real: cancels, marks and a shrink happen, and the cancel
// IAM refuses is a failure.
func TestDemoApply(t *testing.T) {
	r := demoReport(t, "-apply")
	if r.DryRun || !slices.Equal(r.Cancelled, []string{"cr-0b0000000000000b2", "cr-0b0000000000000b3"}) {
		t.Fatalf("cancelled %v", r.Cancelled)
	}
	if len(r.Failures) != 1 || r.Failures[0].ReservationID != demo.Refused || r.Failures[0].Code != "UnauthorizedOperation" {
		t.Fatalf("failures %+v", r.Failures)
	}
	if len(r.Modified) != 1 || r.Modified[0] != (report.Modified{ReservationID: "cr-0e0000000000000e2", From: 20, To: 8}) {
		t.Fatalf("modified %+v", r.Modified)
	}
	if !slices.Equal(r.Marked, []string{"cr-0b0000000000000b1", "cr-0b0000000000000b7", "cr-0e0000000000000e1", "cr-0f0000000000000f2", "cr-0b0000000000000b8"}) || !r.Notified {
		t.Fatalf("marked %v, notified %v", r.Marked, r.Notified)
	}
}

func TestDemoRefusesABadOutput(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"-output", "yaml"}, &out, &errb, demoNow); err == nil || out.Len() != 0 {
		t.Fatalf("-output yaml: %v", err)
	}
}

// README.md shows the demo's real output: the table of the golden file.
func TestReadmeShowsTheDemoOutput(t *testing.T) {
	table, _, _ := strings.Cut(testsupport.ReadGolden(t, "demo-table.golden"), "\nThe simulated account:")
	testsupport.DocShows(t, "README.md", strings.TrimRight(table, "\n"),
		"the demo's output as cmd/odcr-demo/testdata/demo-table.golden has it")
}

// The organization's dry run, as a newcomer sees it, is the golden file.
func TestDemoOrganization(t *testing.T) {
	golden(t, "demo-organization.golden", runDemo(t, "-organization", "-output", "table"))
}

func orgOutput(t *testing.T, args ...string) (results []map[string]any, totals org.Totals) {
	t.Helper()
	var out struct {
		Results []map[string]any `json:"results"`
		Totals  org.Totals       `json:"totals"`
	}
	if err := json.Unmarshal(runDemo(t, append(args, "-organization", "-output", "json")...), &out); err != nil {
		t.Fatal(err)
	}
	return out.Results, out.Totals
}

// Every account and region is a target; the sandbox's two fail as the
// state machine records a function error, the others ran; the totals add
// them up.
func TestDemoOrganizationTargets(t *testing.T) {
	for _, apply := range []bool{false, true} {
		var args []string
		if apply {
			args = []string{"-apply"}
		}
		results, totals := orgOutput(t, args...)
		if len(results) != len(demo.OrgAccounts)*len(demo.OrgRegions) {
			t.Fatalf("%d results", len(results))
		}
		i := 0
		for _, a := range demo.OrgAccounts {
			for _, region := range demo.OrgRegions {
				r := results[i]
				i++
				if r["accountId"] != a.ID || r["region"] != region {
					t.Errorf("result %d: %v %v, want %s %s", i, r["accountId"], r["region"], a.ID, region)
				}
				if failed := r["error"] != nil; failed == a.Trusted {
					t.Errorf("%s %s: %v", a.ID, region, r)
				} else if failed && (r["error"] != "TargetError" || !strings.Contains(r["cause"].(string), "AccessDenied") || len(r["cause"].(string)) > 300) {
					t.Errorf("%s %s: error %v, cause %v", a.ID, region, r["error"], r["cause"])
				} else if !failed && (r["dryRun"] != !apply || r["reservations"] != float64(len(demo.OrgSeeds(demoNow, a.ID, region)))) {
					t.Errorf("%s %s: %v", a.ID, region, r)
				}
			}
		}
		want := org.TargetCounts{Reservations: 19, Idle: 8, ToCancel: 4, ToModify: 1, ToMark: 4}
		if apply {
			want.Cancelled, want.Modified, want.Marked = 4, 1, 4
		}
		if totals.Targets != 8 || totals.Succeeded != 6 || totals.Failed != 2 || len(totals.Failures) != 2 || totals.TargetCounts != want {
			t.Errorf("apply %v: totals %+v", apply, totals)
		}
	}
}

// docs/organization.md shows the organization demo's real output: the
// golden file.
func TestDocsShowTheOrganizationDemo(t *testing.T) {
	golden := testsupport.ReadGolden(t, "demo-organization.golden")
	testsupport.DocShows(t, "docs/organization.md", strings.TrimRight(golden, "\n"),
		"the organization demo's output as cmd/odcr-demo/testdata/demo-organization.golden has it")
}

// Issue 24: -version prints the demo's version; -h is not an error.
func TestDemoVersionAndHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-version"}, &stdout, &stderr, demoNow); err != nil || stdout.String() != "odcr-demo dev\n" {
		t.Fatalf("-version: %q, %v", stdout.String(), err)
	}
	if err := run([]string{"-h"}, &stdout, &stderr, demoNow); err != nil || !strings.Contains(stderr.String(), "-apply") {
		t.Fatalf("-h: %v\n%s", err, stderr.String())
	}
}
