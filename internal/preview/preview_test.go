package preview

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/odcr-autocancel/odcr-autocancel/internal/testsupport"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

func ptr[T any](v T) *T { return &v }

var evaluated = time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)

// measured is the facts of a reservation whose utilization was read.
func measured(typ, zone string, total int32, peak, cov float64) policy.Facts {
	return policy.Facts{
		State: "active", OwnerID: "111122223333", InstanceType: typ, AvailabilityZone: zone,
		AgeHours: 900, Measured: true, PeakUsed: ptr(peak), PeakUtilization: ptr(peak * 100 / float64(total)),
		CoveragePercent: ptr(cov), StoppedTargets: ptr(0), TotalInstanceCount: total, AvailableInstanceCount: total,
	}
}

// screened is the facts of a reservation decided on its description.
func screened(typ, zone string, total, available int32) policy.Facts {
	return policy.Facts{
		State: "active", OwnerID: "111122223333", InstanceType: typ, AvailabilityZone: zone,
		AgeHours: 900, TotalInstanceCount: total, AvailableInstanceCount: available,
	}
}

func mark(since time.Time, grace time.Duration) *policy.IdleMark {
	return &policy.IdleMark{IdleSince: since, CancelAfter: since.Add(grace)}
}

// decisions covers every action (a mark of a cancel and of a shrink, a
// shrink in one step and in several) and several reasons, in no order.
func decisions() []policy.Decision {
	return []policy.Decision{
		{ReservationID: "cr-0000000000000k03", Action: policy.Keep, Reason: policy.ReasonUtilized,
			Detail: "peak use 75% over 168 h is above IDLE_THRESHOLD_PERCENT=10", Facts: measured("c5.xlarge", "us-east-1b", 4, 3, 100)},
		{ReservationID: "cr-0000000000000c02", Action: policy.Cancel, Reason: policy.ReasonIdle,
			Detail: "idle since 2026-03-05T12:00:00Z; its grace period ended 2026-03-08T12:00:00Z",
			Facts:  measured("m5.large", "us-east-1a", 2, 0, 99.96), Mark: mark(evaluated.Add(-72*time.Hour), 72*time.Hour)},
		{ReservationID: "cr-0000000000000m02", Action: policy.Modify, Reason: policy.ReasonOversized,
			Detail: "peak of 2390 instances used of 4780: shrink from 4780 to 2629 in 3 steps of at most 1000 instances (EC2's limit per call), one per run: 3780 in this run",
			Facts:  measured("c6i.large", "us-east-1a", 4780, 2390, 100), Resize: &policy.Resize{From: 4780, To: 3780, Target: 2629}},
		{ReservationID: "cr-0000000000000k01", Action: policy.Keep, Reason: policy.ReasonProtected,
			Detail: `carries the protect tag "odcr-autocancel:protect"`, Facts: screened("r6g.2xlarge", "us-east-1c", 8, 8)},
		{ReservationID: "cr-0000000000000c01", Action: policy.Cancel, Reason: policy.ReasonIdle,
			Detail: "idle since 2026-03-01T09:30:00Z; its grace period ended 2026-03-04T09:30:00Z",
			Facts:  measured("m5.large", "us-east-1a", 1, 0, 100), Mark: mark(evaluated.Add(-170*time.Hour), 72*time.Hour)},
		{ReservationID: "cr-0000000000000u01", Action: policy.Unmark, Reason: policy.ReasonInUse,
			Detail: "1 instance(s) running in it now", Facts: screened("t3.micro", "us-east-1b", 3, 2)},
		{ReservationID: "cr-0000000000000m01", Action: policy.Modify, Reason: policy.ReasonOversized,
			Detail: "peak of 60 instances used of 100: shrink from 100 to 66",
			Facts:  measured("m6i.xlarge", "us-east-1d", 100, 60, 99.8), Resize: &policy.Resize{From: 100, To: 66, Target: 66}},
		{ReservationID: "cr-0000000000000a02", Action: policy.Mark, Reason: policy.ReasonOversized,
			Detail: "peak of 5 instances used of 20: shrink from 20 to 6; marked: may be shrunk after 2026-03-11T12:00:00Z",
			Facts:  measured("m5.2xlarge", "us-east-1a", 20, 5, 100), Resize: &policy.Resize{From: 20, To: 6, Target: 6},
			Mark: mark(evaluated, 72*time.Hour)},
		{ReservationID: "cr-0000000000000a01", Action: policy.Mark, Reason: policy.ReasonIdle,
			Detail: "idle: marked, may be cancelled after 2026-03-11T12:00:00Z",
			Facts:  measured("p4d.24xlarge", "us-east-1b", 1, 0, 100), Mark: mark(evaluated, 72*time.Hour)},
		{ReservationID: "cr-0000000000000k02", Action: policy.Keep, Reason: policy.ReasonInsufficientData,
			Detail: "coverage 41.7% of the window is below MIN_DATA_COVERAGE_PERCENT=90",
			Facts:  policy.Facts{State: "active", OwnerID: "111122223333", InstanceType: "g5.xlarge", AvailabilityZone: "us-east-1a", TotalInstanceCount: 2, AvailableInstanceCount: 2, CoveragePercent: ptr(41.66)}},
		{ReservationID: "cr-0000000000000k05", Action: policy.Keep, Reason: policy.ReasonInGrace,
			Detail: "oversized since 2026-03-07T12:00:00Z, may be shrunk to 12 after 2026-03-10T12:00:00Z",
			Facts:  measured("m5.large", "us-east-1b", 40, 10, 100), Resize: &policy.Resize{From: 40, To: 12, Target: 12},
			Mark: mark(evaluated.Add(-24*time.Hour), 72*time.Hour)},
		{ReservationID: "cr-0000000000000k04", Action: policy.Keep, Reason: policy.ReasonSnoozed,
			Detail: "odcr-autocancel:snooze-until=soon\x1b[31m\tlater is not a date (RFC 3339 or YYYY-MM-DD): kept as snoozed until it is fixed or removed",
			Facts:  screened("m5.large", "us-east-1a", 1, 1)},
		{ReservationID: "cr-0000000000000k06", Action: policy.Keep, Reason: policy.ReasonTooYoung,
			Detail: "active for 20.5 h, less than the 168 h lookback", Facts: screened("m7g.medium", "us-east-1c", 2, 2)},
	}
}

func settings(dryRun bool) report.Effective {
	return report.Effective{
		DryRun: dryRun, IdleThresholdPercent: 10, LookbackHours: 168, MinCoveragePercent: 90,
		ProtectTagKey: "odcr-autocancel:protect", MaxCancellations: 10, MaxIdleSharePercent: 50,
		WindowStart: "2026-03-01T12:00:00Z", WindowEnd: "2026-03-08T12:00:00Z", PeriodSeconds: 300, GraceHours: 72,
	}
}

func count(ds []policy.Decision) report.Counts {
	c := report.Counts{Reservations: len(ds), Reasons: map[policy.Reason]int{}, Actions: map[policy.Action]int{}}
	for _, d := range ds {
		c.Reasons[d.Reason]++
		c.Actions[d.Action]++
	}
	return c
}

// dryRunReport is a preview of every action, with a loosened limit.
func dryRunReport() *report.Report {
	ds := decisions()
	r := &report.Report{
		RunID: "local-0123456789abcdef", Event: "manual", AccountID: "111122223333", DryRun: true,
		StartedAt: evaluated, FinishedAt: evaluated.Add(3 * time.Second), Settings: settings(true),
		Counts: count(ds), Decisions: ds, Cancelled: []string{}, Failures: []report.Failure{}, NotAttempted: []string{},
	}
	r.Settings.Loosened = []report.LoosenedLimit{{Field: "maxCancellations", Setting: "MAX_CANCELLATIONS_PER_RUN", Requested: 100, Deployed: 10}}
	return r
}

// realRunReport is a real run where some things failed or were left out.
func realRunReport() *report.Report {
	ds := decisions()
	r := &report.Report{
		RunID: "local-fedcba9876543210", Event: "scheduled", AccountID: "111122223333",
		StartedAt: evaluated, FinishedAt: evaluated.Add(9 * time.Second), Settings: settings(false),
		Counts: count(ds), Decisions: ds,
		Cancelled:        []string{"cr-0000000000000c01"},
		AlreadyCancelled: []string{"cr-0000000000000c09"},
		Failures: []report.Failure{{ReservationID: "cr-0000000000000c02", Code: "UnauthorizedOperation",
			Message: "cancel: operation error EC2: CancelCapacityReservation, api error UnauthorizedOperation: You are not authorized to perform this operation."}},
		NotAttempted: []string{"cr-0000000000000m02"},
		Modified:     []report.Modified{{ReservationID: "cr-0000000000000m01", From: 100, To: 66}},
		Marked:       []string{"cr-0000000000000a01", "cr-0000000000000a02"},
		Unmarked:     []string{"cr-0000000000000u01"},
		TagFailures: []report.Failure{{ReservationID: "cr-0000000000000u01", Code: "RequestLimitExceeded",
			Message: "unmark: Request limit exceeded."}},
		Notified:         true,
		Problems:         []string{"utilization of 2 reservations not read (kept): operation error CloudWatch: GetMetricData, https response error StatusCode: 500"},
		DecisionsOmitted: 3,
	}
	return r
}

// abortedReport is a run the idle share guard stopped.
func abortedReport() *report.Report {
	ds := []policy.Decision{
		{ReservationID: "cr-0000000000000b01", Action: policy.Keep, Reason: policy.ReasonIdleShareExceeded,
			Detail: "idle, but 9 of 10 reservations (90%) look idle, above MAX_IDLE_SHARE_PERCENT=50: run aborted",
			Facts:  measured("m5.large", "us-east-1a", 1, 0, 100)},
	}
	return &report.Report{
		AccountID: "111122223333", Settings: settings(false), Counts: count(ds), Decisions: ds,
		Aborted: true, AbortReason: "9 of 10 reservations (90%) look idle, above MAX_IDLE_SHARE_PERCENT=50",
	}
}

func render(t *testing.T, r *report.Report, o Options) string {
	t.Helper()
	var buf bytes.Buffer
	if err := Table(&buf, r, o); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestGolden(t *testing.T) {
	on, off := true, false
	for _, c := range []struct {
		name string
		rep  *report.Report
		opts Options
	}{
		{"dry-run", dryRunReport(), Options{}},
		{"dry-run-color", dryRunReport(), Options{Color: true}},
		{"dry-run-width140", dryRunReport(), Options{Width: 140}},
		{"dry-run-width60", dryRunReport(), Options{Width: 60}},
		{"real-run", realRunReport(), Options{Rightsize: &on}},
		{"real-run-color-width120", realRunReport(), Options{Rightsize: &on, Color: true, Width: 120}},
		{"aborted", abortedReport(), Options{Rightsize: &off}},
		// Issue 24: a terminal of 80 and of 120 columns.
		{"dry-run-width80", dryRunReport(), Options{Width: 80}},
		{"dry-run-width120", dryRunReport(), Options{Width: 120}},
	} {
		t.Run(c.name, func(t *testing.T) {
			testsupport.Golden(t, c.name+".golden", render(t, c.rep, c.opts))
		})
	}
}

// Issue 24: on a terminal of 80 or 120 columns no line is wider than the
// terminal, table rows included (columns are left out before the detail is
// cut), every reservation is still there with its action and reason, and
// the legend names the figure columns shown.
func TestTableFitsTheTerminal(t *testing.T) {
	for _, width := range []int{80, 120} {
		out := render(t, dryRunReport(), Options{Width: width})
		for _, line := range strings.Split(out, "\n") {
			if n := utf8.RuneCountInString(line); n > width {
				t.Errorf("width %d: line of %d: %q", width, n, line)
			}
		}
		for _, d := range decisions() {
			if !strings.Contains(out, d.ReservationID) || !strings.Contains(out, string(d.Reason)) {
				t.Errorf("width %d: %s or its reason %s missing", width, d.ReservationID, d.Reason)
			}
		}
		if !strings.Contains(out, "PEAK: most instances in use at once") && !strings.Contains(out, "too narrow for") {
			t.Errorf("width %d: no legend (nor a word on the columns left out):\n%s", width, out)
		}
		if strings.Contains(out, "idle: marked,") {
			t.Errorf("width %d: a dry run says marked:\n%s", width, out)
		}
	}
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// Colours are added after the alignment: without them the table is the
// same, character for character.
func TestColourChangesNothingElse(t *testing.T) {
	for _, r := range []*report.Report{dryRunReport(), realRunReport(), abortedReport()} {
		for _, width := range []int{0, 60, 120, 140} {
			plain := render(t, r, Options{Width: width})
			coloured := render(t, r, Options{Width: width, Color: true})
			if plain == coloured {
				t.Fatal("no colour added")
			}
			if got := ansi.ReplaceAllString(coloured, ""); got != plain {
				t.Fatalf("width %d: colour changed the text:\n%s\nwant:\n%s", width, got, plain)
			}
			if strings.Contains(plain, "\x1b") {
				t.Fatalf("an escape character without Color:\n%q", plain)
			}
		}
	}
}

// With a width, no line is longer, except the table's rows when even
// without their detail they do not fit: the other columns are never cut.
func TestWidth(t *testing.T) {
	for _, width := range []int{140, 120, 100, 72, 60} {
		out := render(t, dryRunReport(), Options{Width: width})
		inTable := false
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "RESERVATION") {
				inTable = true
			}
			if line == "" {
				inTable = false
			}
			if n := utf8.RuneCountInString(line); n > width && !inTable {
				t.Errorf("width %d: line of %d: %q", width, n, line)
			}
		}
		// Every row is still there, whole up to its reason.
		for _, d := range decisions() {
			if !strings.Contains(out, d.ReservationID) || !strings.Contains(out, string(d.Reason)) {
				t.Errorf("width %d: %s or %s missing", width, d.ReservationID, d.Reason)
			}
		}
	}
}

// The rows come in the order that matters: what the run does, then the
// reservations kept, each by id.
func TestOrder(t *testing.T) {
	out := render(t, dryRunReport(), Options{})
	want := []string{
		"cr-0000000000000c01", "cr-0000000000000c02", // cancel
		"cr-0000000000000m01", "cr-0000000000000m02", // modify
		"cr-0000000000000a01", "cr-0000000000000a02", // mark
		"cr-0000000000000u01", // unmark
		"cr-0000000000000k01", "cr-0000000000000k02", "cr-0000000000000k03",
		"cr-0000000000000k04", "cr-0000000000000k05", "cr-0000000000000k06", // keep
	}
	last := -1
	for _, id := range want {
		at := strings.Index(out, id)
		if at <= last {
			t.Fatalf("%s out of order:\n%s", id, out)
		}
		last = at
	}
}

// Every reason code renders, whatever the action, the colour and the
// width.
func TestEveryReason(t *testing.T) {
	for _, reason := range policy.Reasons {
		for _, a := range []policy.Action{policy.Cancel, policy.Keep, policy.Mark, policy.Unmark, policy.Modify, "something-new"} {
			d := policy.Decision{ReservationID: "cr-0123456789abcdef0", Action: a, Reason: reason,
				Detail: "why " + string(reason), Facts: screened("m5.large", "us-east-1a", 3, 3)}
			if a == policy.Modify {
				d.Resize = &policy.Resize{From: 3, To: 1, Target: 1}
			}
			r := &report.Report{AccountID: "111122223333", DryRun: true, Settings: settings(true), Decisions: []policy.Decision{d}}
			for _, o := range []Options{{}, {Color: true}, {Width: 80}, {Width: 20, Color: true}} {
				out := render(t, r, o)
				if !strings.Contains(out, string(reason)) || !strings.Contains(out, "cr-0123456789abcdef0") {
					t.Fatalf("reason %s, action %s, %+v:\n%s", reason, a, o, out)
				}
			}
		}
	}
}

func TestEmptyAndNil(t *testing.T) {
	out := render(t, &report.Report{AccountID: "111122223333", DryRun: true, Settings: settings(true)}, Options{Width: 40})
	if strings.Contains(out, "RESERVATION") || !strings.Contains(out, "0 reservations") {
		t.Fatalf("empty report:\n%s", out)
	}
	if out := render(t, nil, Options{}); out != "no report\n" {
		t.Fatalf("nil report: %q", out)
	}
}

func TestUseColor(t *testing.T) {
	env := func(noColor string) func(string) string {
		return func(k string) string {
			if k == "NO_COLOR" {
				return noColor
			}
			return ""
		}
	}
	file, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	for _, f := range []*os.File{file, pw, nil} {
		if IsTerminal(f) || UseColor(f, env("")) {
			t.Errorf("%v: taken for a terminal", f)
		}
	}
	// A character device stands in for a terminal.
	dev, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer dev.Close()
	if fi, err := dev.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Skipf("%s is not a character device here", os.DevNull)
	}
	if !IsTerminal(dev) || !UseColor(dev, env("")) {
		t.Error("a character device with NO_COLOR unset: no colour")
	}
	for _, v := range []string{"1", "0", "false", "yes"} {
		if UseColor(dev, env(v)) {
			t.Errorf("NO_COLOR=%s: colour", v)
		}
	}
}
