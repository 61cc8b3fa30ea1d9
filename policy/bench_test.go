package policy

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkEvaluate measures the policy alone: screening, judging, the
// stopped check and the plan, per reservation. Reported as reservations/s.
func BenchmarkEvaluate(b *testing.B) {
	const n = 10000
	s := settings()
	s.MaxCancellations = 100
	reservations := make([]Reservation, n)
	usage := make([]Utilization, n)
	for i := range reservations {
		r := idle(fmt.Sprintf("cr-%017x", i))
		r.Created = now.Add(-time.Duration(200+i%500) * time.Hour)
		switch i % 10 {
		case 1:
			r.Available = 0
		case 2:
			r.OwnerID = "999988887777"
		case 3:
			r.Tags = map[string]string{"team": "ml", s.ProtectTagKey: ""}
		}
		reservations[i] = r
		usage[i] = Utilization{Complete: true, PeakUsed: float64(i % 3), Datapoints: 2016}
	}
	var none Dependents
	decisions := make([]Decision, n)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i, r := range reservations {
			d := Screen(s, r, now)
			d = Judge(s, d, &usage[i])
			decisions[i] = Stopped(d, &none)
		}
		_ = MakePlan(s, decisions)
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "reservations/s")
}
