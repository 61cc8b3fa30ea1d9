package handler_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// guardedLimit is one deployed limit a run request may override, with a
// value that tightens it, the deployed value, and one that loosens it.
type guardedLimit struct {
	field, variable string
	// above: a higher value loosens the limit (else a lower one does).
	above                     bool
	tighten, equal, loosen    string
	accepted                  string // in a run that cancels
	effective                 func(report.Effective) float64
	deployedValue, wantLoosen float64
}

// The deployment of these tests: threshold 10 %, lookback 168 h, budget 10.
var guardedLimits = []guardedLimit{
	{
		field: "idleThresholdPercent", variable: "IDLE_THRESHOLD_PERCENT", above: true,
		tighten: "5", equal: "10", loosen: "20", accepted: "a number from 0 to 10",
		effective:     func(e report.Effective) float64 { return e.IdleThresholdPercent },
		deployedValue: 10, wantLoosen: 20,
	},
	{
		field: "lookbackHours", variable: "LOOKBACK_HOURS", above: false,
		tighten: "336", equal: "168", loosen: "24", accepted: "an integer from 168 to 1512",
		effective:     func(e report.Effective) float64 { return float64(e.LookbackHours) },
		deployedValue: 168, wantLoosen: 24,
	},
	{
		field: "maxCancellations", variable: "MAX_CANCELLATIONS_PER_RUN", above: true,
		tighten: "2", equal: "10", loosen: "25", accepted: "an integer from 0 to 10",
		effective:     func(e report.Effective) float64 { return float64(e.MaxCancellations) },
		deployedValue: 10, wantLoosen: 25,
	},
}

func guardedDeployment(dryRun bool) func(*handler.Settings) {
	return func(s *handler.Settings) {
		s.DryRun = dryRun
		s.IdleThresholdPercent = 10
		s.LookbackHours = 168
		s.MaxCancellations = 10
	}
}

// guardHarness is a harness over the guarded deployment that counts every
// AWS call, STS's (CallerAccount) included.
func guardHarness(t *testing.T, deployedDryRun bool) (*harness, *int) {
	t.Helper()
	hs := newHarness(t, guardedDeployment(deployedDryRun))
	hs.fake.addIdle(crID(1), crID(2))
	callers := 0
	hs.h.CallerAccount = func(context.Context) (string, error) {
		callers++
		return testAccount, nil
	}
	return hs, &callers
}

func awsCalls(hs *harness, callers int) int {
	return callers + hs.fake.describeCalls + len(hs.fake.metricCalls) + hs.fake.instanceCalls + len(hs.fake.cancels)
}

// Permission to invoke the function is not permission to rewrite the policy
// its deployer reviewed: a run request may tighten any deployed limit, and
// may loosen one only in a dry run (a preview). A loosening request for a
// run that cancels is refused before any AWS call, STS included, naming the
// field, the requested and the deployed value.
func TestRunRequestLoosensDeployedLimitsOnlyInADryRun(t *testing.T) {
	for _, g := range guardedLimits {
		for _, deployedDryRun := range []bool{true, false} {
			for _, dryRun := range []string{"", "true", "false"} {
				for _, change := range []string{"tighten", "equal", "loosen"} {
					value := map[string]string{"tighten": g.tighten, "equal": g.equal, "loosen": g.loosen}[change]
					event := `{"` + g.field + `": ` + value
					if dryRun != "" {
						event += `, "dryRun": ` + dryRun
					}
					event += "}"
					preview := dryRun == "true" || (dryRun == "" && deployedDryRun)
					name := fmt.Sprintf("%s/deployed-dry-run=%v/%s", g.field, deployedDryRun, event)
					t.Run(name, func(t *testing.T) {
						hs, callers := guardHarness(t, deployedDryRun)
						rep, err := hs.run(t, event)
						if change == "loosen" && !preview {
							checkLooseningRefused(t, hs, *callers, rep, err, g, value)
							return
						}
						if err != nil {
							t.Fatalf("refused: %v", err)
						}
						if rep.DryRun != preview || rep.Settings.DryRun != preview {
							t.Errorf("dryRun %v, want %v", rep.DryRun, preview)
						}
						var want float64
						fmt.Sscan(value, &want)
						if got := g.effective(rep.Settings); got != want {
							t.Errorf("effective %s %v, want %v", g.field, got, want)
						}
						var wantLoosened []report.LoosenedLimit
						if change == "loosen" {
							wantLoosened = []report.LoosenedLimit{{Field: g.field, Setting: g.variable, Requested: g.wantLoosen, Deployed: g.deployedValue}}
						}
						if fmt.Sprint(rep.Settings.Loosened) != fmt.Sprint(wantLoosened) {
							t.Errorf("settings.loosened %+v, want %+v", rep.Settings.Loosened, wantLoosened)
						}
						if preview && len(hs.fake.realCancels()) != 0 {
							t.Errorf("a preview cancelled %v", hs.fake.realCancels())
						}
					})
				}
			}
		}
	}
}

func checkLooseningRefused(t *testing.T, hs *harness, callers int, rep *report.Report, err error, g guardedLimit, value string) {
	t.Helper()
	var invalid *handler.InvalidEventError
	if !errors.As(err, &invalid) || !errors.Is(err, handler.ErrInvalidEvent) || rep != nil {
		t.Fatalf("Run returned a report: %v, error %v; want an *InvalidEventError", rep != nil, err)
	}
	dir := "above"
	if !g.above {
		dir = "below"
	}
	want := fmt.Sprintf(`field %q: %s is %s the deployed %s=%g: a run request may loosen a deployed limit only in a dry run (a preview); accepted in a run that cancels: %s`,
		g.field, value, dir, g.variable, g.deployedValue, g.accepted)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q\nwant it to contain %q", err, want)
	}
	if n := awsCalls(hs, callers); n != 0 {
		t.Errorf("%d AWS calls (STS included) before the refusal, want none", n)
	}
	lines := hs.tl.logLines()
	if len(lines) == 0 || lines[len(lines)-1]["msg"] != "invalid event; nothing done" {
		t.Errorf("last log line %v, want \"invalid event; nothing done\"", lines[len(lines)-1:])
	}
}

// The exact refusal, and every loosened field named at once.
func TestLooseningRealRunRefusalNamesEveryField(t *testing.T) {
	hs, callers := guardHarness(t, true)
	_, err := hs.run(t, `{"dryRun": false, "idleThresholdPercent": 20, "lookbackHours": 24, "maxCancellations": 25, "reservationIds": ["`+crID(1)+`"]}`)
	want := `invalid event: run request: ` +
		`field "idleThresholdPercent": 20 is above the deployed IDLE_THRESHOLD_PERCENT=10: a run request may loosen a deployed limit only in a dry run (a preview); accepted in a run that cancels: a number from 0 to 10` + "\n" +
		`field "lookbackHours": 24 is below the deployed LOOKBACK_HOURS=168: a run request may loosen a deployed limit only in a dry run (a preview); accepted in a run that cancels: an integer from 168 to 1512` + "\n" +
		`field "maxCancellations": 25 is above the deployed MAX_CANCELLATIONS_PER_RUN=10: a run request may loosen a deployed limit only in a dry run (a preview); accepted in a run that cancels: an integer from 0 to 10`
	if err == nil || err.Error() != want {
		t.Fatalf("error\n%v\nwant\n%s", err, want)
	}
	if n := awsCalls(hs, *callers); n != 0 {
		t.Fatalf("%d AWS calls", n)
	}
}

// Tightening never needs a dry run: fewer cancellations, a lower threshold,
// a longer lookback, named reservations, switching the dry run off.
func TestTighteningRealRunIsAccepted(t *testing.T) {
	hs, _ := guardHarness(t, true)
	rep, err := hs.run(t, `{"dryRun": false, "idleThresholdPercent": 0, "lookbackHours": 1512, "maxCancellations": 0, "reservationIds": ["`+crID(1)+`"]}`)
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Settings
	if rep.DryRun || s.IdleThresholdPercent != 0 || s.LookbackHours != 1512 || s.MaxCancellations != 0 || len(s.Loosened) != 0 {
		t.Fatalf("report dryRun %v settings %+v", rep.DryRun, s)
	}
	// Every field loosened at once is a preview when the run is a dry run.
	hs, _ = guardHarness(t, false)
	rep, err = hs.run(t, `{"dryRun": true, "idleThresholdPercent": 50, "lookbackHours": 1, "maxCancellations": 1000}`)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.DryRun || len(rep.Settings.Loosened) != 3 || len(hs.fake.cancels) != 0 {
		t.Fatalf("report dryRun %v loosened %+v cancels %v", rep.DryRun, rep.Settings.Loosened, hs.fake.cancels)
	}
}
