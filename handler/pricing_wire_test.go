package handler_test

// Price estimates through the real Price List client and the fake account's
// GetProducts (awsJson1_1, price list documents as JSON strings).

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

func TestWirePriceEstimates(t *testing.T) {
	acct := s2Account(t, 5)
	acct.AddSamplePrices()
	for i := 1; i <= 5; i++ {
		acct.SetUsedInstancesRegular(crID(i), week(5*time.Minute, 1))
	}
	// Two m5.large Linux (one price looked up for both), one m6i.large
	// Windows, one oversized m5.large, one of a platform with no known
	// price list match.
	r3, _ := acct.Reservation(crID(3))
	r3.InstanceType, r3.InstancePlatform = "m6i.large", "Windows"
	acct.AddReservation(r3)
	r4, _ := acct.Reservation(crID(4))
	r4.TotalInstanceCount, r4.AvailableInstanceCount = 10, 8 // 2 in use
	acct.AddReservation(r4)
	acct.SetUsedInstancesRegular(crID(4), fakeaws.RegularSeries{From: testNow.Add(-30 * 24 * time.Hour), To: testNow, Value: 2})
	r5, _ := acct.Reservation(crID(5))
	r5.InstancePlatform = "Windows with SQL Server"
	acct.AddReservation(r5)
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetProducts, Code: "ThrottlingException", Times: 1})

	s := defaultSettings(t)
	s.Rightsize, s.MaxCancellations = true, 0 // a preview of costs: nothing cancelled
	h, tl := wireHandler(t, acct, s)
	report, err := h.Run(context.Background(), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	// The metrics line carries the run's cost figures.
	if m := ftLastLog(tl, "metrics"); m == nil || m["IdleMonthlyCost"] != report.Costs.IdleMonthly || m["RemovedMonthlyCost"] != 0.0 {
		t.Errorf("metrics line %v, costs %+v", m, report.Costs)
	}
	price := map[string]float64{}
	for _, p := range fakeaws.SamplePrices() {
		if p.RegionCode == "us-east-1" && p.Tenancy == "Shared" && p.CapacityStatus == "Used" && p.PreInstalledSw == "NA" {
			switch {
			case p.InstanceType == "m5.large" && p.OperatingSystem == "Linux":
				price["m5.large"] = parse(t, p.USDPerHour)
			case p.InstanceType == "m6i.large" && p.OperatingSystem == "Windows":
				price["m6i.large/Windows"] = parse(t, p.USDPerHour)
			}
		}
	}
	want := map[string]float64{
		crID(1): 2 * price["m5.large"] * 730,          // idle, budget 0: kept budget-exhausted
		crID(2): 2 * price["m5.large"] * 730,          // the same
		crID(3): 2 * price["m6i.large/Windows"] * 730, // another product
		crID(4): 7 * price["m5.large"] * 730,          // shrink 10 -> 3: 7 unused
	}
	for _, d := range report.Decisions {
		w, priced := want[d.ReservationID]
		switch {
		case !priced && d.Facts.MonthlyCost != nil:
			t.Errorf("%s (%s): a figure %v for a platform with no price list match", d.ReservationID, d.Reason, *d.Facts.MonthlyCost)
		case priced && (d.Facts.MonthlyCost == nil || math.Abs(*d.Facts.MonthlyCost-math.Round(w*100)/100) > 0.011):
			t.Errorf("%s (%s %s): monthly %v, want %.2f", d.ReservationID, d.Action, d.Reason, d.Facts.MonthlyCost, w)
		}
	}
	if d := decisionOf(t, report, crID(4)); d.Action != policy.Modify && d.Action != policy.Mark {
		t.Fatalf("oversized: %s", d.Action)
	}
	// One call per distinct product (m5.large Linux, m6i.large Windows),
	// plus the throttled one retried; none for the unknown platform.
	if got := acct.Count(fakeaws.OpGetProducts); got != 3 {
		t.Errorf("GetProducts requests %d, want 2 lookups and 1 retry", got)
	}
	if report.Costs == nil || report.Costs.Priced != 4 || report.Costs.IdleMonthly <= 0 || report.Costs.WouldRemoveMonthly <= 0 {
		t.Fatalf("costs %+v", report.Costs)
	}
	if len(report.Problems) != 0 {
		t.Errorf("problems %v: a missing price is no problem of the run", report.Problems)
	}
}

// When the Price List cannot be read, there is no figure, and nothing else
// changes.
func TestWirePricesUnreadable(t *testing.T) {
	acct := s2Account(t, 1)
	acct.SetUsedInstancesRegular(crID(1), week(5*time.Minute, 1))
	acct.InjectFault(fakeaws.Fault{Operation: fakeaws.OpGetProducts, Code: "AccessDeniedException", HTTPStatus: 403})
	s := defaultSettings(t)
	s.DryRun = false
	h, _ := wireHandler(t, acct, s)
	report, err := h.Run(context.Background(), []byte(`{}`))
	if err != nil || len(report.Cancelled) != 1 || report.Costs != nil || decisionOf(t, report, crID(1)).Facts.MonthlyCost != nil {
		t.Fatalf("error %v, cancelled %v, costs %+v", err, report.Cancelled, report.Costs)
	}
}

func parse(t *testing.T, s string) float64 {
	t.Helper()
	var f float64
	if _, err := fmtSscan(s, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

var fmtSscan = fmt.Sscan
