package handler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// fittedReport is the response as a client reads it, with the fields that
// say what was left out.
type fittedReport struct {
	report.Report
	Trimmed         []string                   `json:"trimmed"`
	OutcomesOmitted map[string]int             `json:"outcomesOmitted"`
	Raw             map[string]json.RawMessage `json:"-"`
}

func decodeResponse(t *testing.T, out []byte) fittedReport {
	t.Helper()
	var r fittedReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("response is not a report: %v", err)
	}
	if err := json.Unmarshal(out, &r.Raw); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestInvokeResponseAlwaysFits: a real run that cancelled what it should,
// with many kept decisions, most of which matter (budget-exhausted: the
// routine-keep trim leaves them in). Whatever MaxResponseBytes, the
// response fits, or is the smallest report there is; detail goes first,
// step by step, and the response says which and how many; the outcome lists
// and the counts stay unless even they cannot fit, and then the response
// says so.
func TestInvokeResponseAlwaysFits(t *testing.T) {
	const idle, expired, budget = 300, 100, 150
	const n = idle + expired
	hs := newHarness(t, live, func(s *handler.Settings) { s.MaxCancellations = budget })
	for i := 1; i <= n; i++ {
		hs.fake.reservations = append(hs.fake.reservations, reservation(crID(i), func(c *types.CapacityReservation) {
			// crID(1) is the oldest.
			c.CreateDate = aws.Time(testNow.Add(-time.Duration(30*24+n-i) * time.Hour))
			if i > idle {
				c.State = types.CapacityReservationStateExpired
			}
		}))
		hs.fake.usage[crID(i)] = idleUsage
	}
	invoke := func(t *testing.T, limit int) ([]byte, fittedReport) {
		t.Helper()
		hs.h.MaxResponseBytes = limit
		for i := range budget { // the same run each time
			hs.fake.reservations[i].State = types.CapacityReservationStateActive
		}
		out, err := hs.h.Invoke(context.Background(), []byte(`{}`))
		if err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		}
		r := decodeResponse(t, out)
		t.Logf("limit %d: %d bytes; trimmed %v; %d decisions omitted", limit, len(out), r.Trimmed, r.DecisionsOmitted)
		return out, r
	}
	full, _ := invoke(t, 0)
	smallest, _ := invoke(t, 1)
	// No detail left (decisions, problems): the outcome lists and the counts.
	noDetail, r := invoke(t, len(full)/20)
	if !slices.Equal(r.Trimmed, []string{"routine-keep-decisions", "keep-decisions", "decisions"}) || len(noDetail) <= len(smallest) {
		t.Fatalf("at %d bytes: trimmed %v, %d bytes (smallest %d)", len(full)/20, r.Trimmed, len(noDetail), len(smallest))
	}

	var wantCancelled []string
	for i := 1; i <= budget; i++ {
		wantCancelled = append(wantCancelled, crID(i))
	}
	for _, tt := range []struct {
		limit int
		steps []string
	}{
		{len(full), nil},
		{len(full) / 2, []string{"routine-keep-decisions", "keep-decisions"}},
		{len(noDetail), []string{"routine-keep-decisions", "keep-decisions", "decisions"}},
		{len(noDetail) - 1, []string{"routine-keep-decisions", "keep-decisions", "decisions", "outcome-lists"}},
		{len(smallest), []string{"routine-keep-decisions", "keep-decisions", "decisions", "outcome-lists"}},
		// Below the smallest report: that one, the best there is.
		{len(smallest) - 1, []string{"routine-keep-decisions", "keep-decisions", "decisions", "outcome-lists"}},
	} {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			out, r := invoke(t, tt.limit)
			if !slices.Equal(r.Trimmed, tt.steps) {
				t.Fatalf("trimmed %v, want %v", r.Trimmed, tt.steps)
			}
			if len(out) > tt.limit && len(out) != len(smallest) {
				t.Fatalf("%d bytes over a limit of %d", len(out), tt.limit)
			}
			// The counts stay, always.
			c := r.Counts
			if c.Reservations != n || c.Cancelled != budget || c.Planned != budget || c.Reasons[policy.ReasonBudgetExhausted] != idle-budget {
				t.Fatalf("counts %+v", c)
			}
			if r.DecisionsOmitted+len(r.Decisions) != n {
				t.Fatalf("%d decisions and %d omitted, for %d reservations", len(r.Decisions), r.DecisionsOmitted, n)
			}
			if slices.Contains(r.Trimmed, "outcome-lists") {
				if r.OutcomesOmitted["cancelled"] != budget || r.Cancelled != nil {
					t.Fatalf("outcomes omitted %v, cancelled %v", r.OutcomesOmitted, r.Cancelled)
				}
				return
			}
			if !slices.Equal(r.Cancelled, wantCancelled) || r.Failures == nil || r.NotAttempted == nil {
				t.Fatalf("cancelled %v, failures %v, not attempted %v", r.Cancelled, r.Failures, r.NotAttempted)
			}
			if _, ok := r.Raw["outcomesOmitted"]; ok {
				t.Fatal("outcomesOmitted set with the outcome lists in the response")
			}
		})
	}
}
