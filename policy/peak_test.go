package policy_test

import (
	"math"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// A peak that is not a number (or not a utilization at all) is not data:
// never idle.
func TestJudgeRefusesNonsensePeak(t *testing.T) {
	s := policy.Settings{AccountID: "111122223333", Lookback: 168 * time.Hour, MinCoveragePercent: 90,
		ProtectTagKey: "odcr-autocancel:protect", MaxCancellations: 10, MaxIdleSharePercent: 100, PublishingInterval: 5 * time.Minute}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	r := policy.Reservation{ID: "cr-0123456789abcdef0", OwnerID: "111122223333", State: "active", ReservationType: "default",
		Total: 2, Available: 2, Created: now.Add(-30 * 24 * time.Hour)}
	for _, peak := range []float64{math.NaN(), math.Inf(-1), -5} {
		d := policy.Judge(s, policy.Screen(s, r, now), &policy.Utilization{Complete: true, PeakUsed: peak, Datapoints: 2016})
		if d.Candidate() {
			t.Errorf("peak %v: %s/%s, want keep insufficient-data", peak, d.Action, d.Reason)
		}
	}
}
