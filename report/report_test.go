package report

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// A huge problems list (a metric outage over tens of thousands of
// reservations) is left out before the cancel decisions, and counted.
func TestReportFitLeavesOutHugeProblems(t *testing.T) {
	r := &Report{
		Cancelled:    []string{"cr-1", "cr-2"},
		Failures:     []Failure{},
		NotAttempted: []string{},
		Counts:       Counts{Reservations: 4, Cancelled: 2},
	}
	for _, id := range []string{"cr-1", "cr-2"} {
		r.Decisions = append(r.Decisions, policy.Decision{ReservationID: id, Action: policy.Cancel, Reason: policy.ReasonIdle})
	}
	r.Decisions = append(r.Decisions,
		policy.Decision{ReservationID: "cr-3", Action: policy.Keep, Reason: policy.ReasonInsufficientData},
		policy.Decision{ReservationID: "cr-4", Action: policy.Keep, Reason: policy.ReasonBudgetExhausted})
	for i := range 20000 {
		r.Problems = append(r.Problems, fmt.Sprintf("1 reservations from cr-%017x not measured: %s", i, strings.Repeat("x", 200)))
	}
	const limit = 64 << 10
	out, err := r.Fit(limit)
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := []string{TrimRoutineKeepDecisions, TrimKeepDecisions, TrimProblems}
	if len(out) > limit || !slices.Equal(got.Trimmed, want) {
		t.Fatalf("%d bytes, trimmed %v; want at most %d, %v", len(out), got.Trimmed, limit, want)
	}
	if got.ProblemsOmitted != 20000 || got.Problems != nil || got.DecisionsOmitted != 2 || len(got.Decisions) != 2 {
		t.Fatalf("problems omitted %d (%d left), decisions omitted %d (%d left)", got.ProblemsOmitted, len(got.Problems), got.DecisionsOmitted, len(got.Decisions))
	}
	if !slices.Equal(got.Cancelled, []string{"cr-1", "cr-2"}) || got.OutcomesOmitted != nil {
		t.Fatalf("cancelled %v, outcomes omitted %v", got.Cancelled, got.OutcomesOmitted)
	}
}

func TestCommittedCost(t *testing.T) {
	from := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		price     float64
		committed int32
		end       time.Time
		want      float64
	}{
		{"4 instances for 10 days at $1.5", 1.5, 4, from.Add(240 * time.Hour), 1440},
		{"a fraction of an hour counts", 1, 1, from.Add(90 * time.Minute), 1.5},
		{"ended already: nothing", 1, 4, from.Add(-time.Hour), 0},
		{"no committed instance: nothing", 1, 0, from.Add(time.Hour), 0},
		{"no price: nothing", 0, 4, from.Add(time.Hour), 0},
		{"rounded to the cent", 0.333, 1, from.Add(time.Hour), 0.33},
	}
	for _, tt := range tests {
		if got := CommittedCost(tt.price, tt.committed, from, tt.end); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
