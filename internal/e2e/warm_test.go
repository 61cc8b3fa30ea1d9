//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// TestWarmInvocations sends several events to one emulator, as Lambda does
// to a warm execution environment: the bootstrap starts once and serves
// every invocation, a refused event in between does not break it, and each
// invocation gets its own request id. It also measures cold against warm
// latency. Deployed as a dry run, nothing is cancelled.
func TestWarmInvocations(t *testing.T) {
	seeds := scenario(time.Now())
	acct := newAccount(seeds)
	logs := newLogCapture()
	_, endpoint := serveFake(t, acct, logs, "", nil)
	rie := startEmulator(t, baseEnv(endpoint), logs)
	t.Logf("RIE start-to-ready %v", rie.startToReady)

	var bootstrapPID int
	for i, file := range []string{"manual-dry-run.json", "scheduler-input.json", "invalid-not-an-object.json", "scheduled.json", "manual-dry-run.json"} {
		payload, err := os.ReadFile(filepath.Join(eventsDir, file))
		if err != nil {
			t.Fatal(err)
		}
		requestID := fmt.Sprintf("e2e-warm-%d", i)
		inv := rie.invoke(t, requestID, payload)
		logs.waitFor(func(l logLine) bool { return l.Text == "END RequestId: "+requestID }, 5*time.Second)
		rep, _ := logs.report(requestID)
		state := "warm"
		if i == 0 {
			state = "cold"
		}
		t.Logf("%d %-28s %s invoke %8v (RIE REPORT: init %v, duration %v)", i, file, state, inv.Latency.Round(time.Microsecond), rep.Init, rep.Duration)

		children := childPIDs(rie.cmd.Process.Pid)
		if len(children) != 1 {
			t.Fatalf("after invocation %d the emulator has children %v, want the one bootstrap", i, children)
		}
		if i == 0 {
			bootstrapPID = children[0]
		} else if children[0] != bootstrapPID {
			t.Errorf("invocation %d ran in a new bootstrap (pid %d, was %d)", i, children[0], bootstrapPID)
		}

		if file == "invalid-not-an-object.json" {
			var e lambdaError
			if json.Unmarshal(inv.Body, &e) != nil || e.ErrorMessage == "" {
				t.Errorf("%s: response is not a function error: %s", file, inv.Body)
			}
			continue
		}
		var r report.Report
		if err := json.Unmarshal(inv.Body, &r); err != nil || r.RunID != requestID || !r.DryRun {
			t.Errorf("%s: report runId %q dryRun %v (%v), want %q, a dry run", file, r.RunID, r.DryRun, err, requestID)
		}
		if n := len(logs.function(requestID)); n == 0 {
			t.Errorf("%s: no log line with request_id %s", file, requestID)
		}
	}

	if n := acct.Count(fakeaws.OpCancelCapacityReservation); n != 0 {
		t.Errorf("%d cancel requests from dry runs", n)
	}
	for _, s := range seeds {
		if r, _ := acct.Reservation(s.res.ID); r.State != cmpOr(s.res.State, "active") {
			t.Errorf("%s is %s after dry runs", s.res.ID, r.State)
		}
	}
	inits := slices.DeleteFunc(logs.snapshot(), func(l logLine) bool {
		return !reportPattern.MatchString(l.Text) || reportPattern.FindStringSubmatch(l.Text)[2] == ""
	})
	if len(inits) != 1 {
		t.Errorf("%d REPORT lines with an Init Duration, want 1 (the cold start)", len(inits))
	}
}
