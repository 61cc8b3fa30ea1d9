package policy

import (
	"math"
	"testing"
	"time"
)

// hourly is a complete week of hourly maxima whose peak is used instances.
func hourly(used float64, hours int) *Utilization {
	return &Utilization{Complete: true, PeakUsed: used, Datapoints: hours, Period: time.Hour}
}

// Hourly data may keep a reservation for its use; it never lets one go.
func TestJudgeOnHourlyDataNeverIdle(t *testing.T) {
	s := settings()
	cases := []struct {
		name   string
		u      *Utilization
		reason Reason
	}{
		{"idle all week", hourly(0, 168), ReasonInsufficientData},
		{"used at its peak", hourly(1, 168), ReasonUtilized},
		{"used, few hours", hourly(2, 3), ReasonInsufficientData},
		{"coverage counted in hours", hourly(0, 150), ReasonInsufficientData},
		{"not read for time", &Utilization{OutOfTime: true}, ReasonInsufficientData},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Judge(s, Screen(s, idle("cr-70000000000000000"), now), c.u)
			if d.Candidate() || d.Reason != c.reason {
				t.Fatalf("%s/%s (%s), want keep %s", d.Action, d.Reason, d.Detail, c.reason)
			}
		})
	}
	// Hourly coverage is counted against hourly buckets: 168 of 168 is
	// full, which 5-minute expectations (2,016) would call 8 %.
	d := Judge(s, Screen(s, idle("cr-70000000000000000"), now), hourly(1, 168))
	if d.Facts.CoveragePercent == nil || *d.Facts.CoveragePercent != 100 {
		t.Errorf("hourly coverage %v, want 100", d.Facts.CoveragePercent)
	}
	d = Judge(s, Screen(s, idle("cr-70000000000000000"), now), &Utilization{OutOfTime: true})
	if d.Facts.Measured {
		t.Error("a reservation not read for lack of time says it was measured")
	}
}

// A shrink needs 5-minute data too.
func TestRightsizeOnHourlyDataNeverShrinks(t *testing.T) {
	s := rightsizeSettings()
	r := sized(10, 1)
	u := hourly(2, 168)
	d := Rightsize(s, Judge(s, Screen(s, r, now), u), r, u, none(), now)
	if d.Action == Modify {
		t.Fatalf("shrunk on hourly data: %+v", d.Resize)
	}
	if got := shrink(s, r, 2, none()); got.Action != Modify {
		t.Fatalf("the same peak at 5 minutes is not a shrink (%s/%s): the case proves nothing", got.Action, got.Reason)
	}
}

// Which reservations the second, 5-minute read must cover.
func TestNeedsFineRead(t *testing.T) {
	off, on := settings(), rightsizeSettings()
	protected := idle("cr-70000000000000001")
	protected.Tags = map[string]string{"odcr-autocancel:protect": "true"}
	cases := []struct {
		name string
		s    Settings
		r    Reservation
		u    *Utilization
		want bool
	}{
		{"idle hourly: a cancel candidate", off, idle("cr-70000000000000002"), hourly(0, 168), true},
		{"used hourly, no right-sizing: kept without a second read", off, idle("cr-70000000000000003"), hourly(1, 168), false},
		{"hourly gap: the 5-minute read decides", off, idle("cr-70000000000000004"), hourly(0, 100), true},
		{"hourly read failed", off, idle("cr-70000000000000005"), nil, true},
		{"hourly partial", off, idle("cr-70000000000000006"), &Utilization{Complete: false, Datapoints: 168, Period: time.Hour}, true},
		{"hourly NaN peak", off, idle("cr-70000000000000007"), hourly(math.NaN(), 168), true},
		{"protected: never measured", off, protected, hourly(0, 168), false},
		{"used, oversized: a shrink candidate", on, sized(10, 1), hourly(2, 168), true},
		{"used to its size: no shrink, no second read", on, sized(10, 1), hourly(10, 168), false},
		{"shrink under the minimum: no second read", func() Settings { s := on; s.RightsizeMinInstances = 5; return s }(), sized(10, 1), hourly(6, 168), false},
		{"in use now and oversized", on, sized(10, 2), hourly(2, 168), true},
		{"in use now, no right-sizing: screened out", off, sized(10, 2), hourly(2, 168), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := NeedsFineRead(c.s, Screen(c.s, c.r, now), c.r, c.u, now); got != c.want {
				t.Fatalf("NeedsFineRead = %v, want %v", got, c.want)
			}
		})
	}
}

// The hourly screen loses nothing: whenever it spares the second read, the
// decision made on the exact 5-minute data (same peak, full coverage) would
// not have cancelled or shrunk either.
func TestNeedsFineReadLosesNothing(t *testing.T) {
	for _, s := range []Settings{settings(), rightsizeSettings()} {
		for total := int32(1); total <= 12; total++ {
			for usedNow := int32(0); usedNow <= total; usedNow++ {
				for peak := 0.0; peak <= float64(total); peak++ {
					r := sized(total, usedNow)
					d := Screen(s, r, now)
					if NeedsFineRead(s, d, r, hourly(peak, 168), now) {
						continue
					}
					fine := fullData(peak)
					got := Rightsize(s, Stopped(Judge(s, d, fine), none()), r, fine, none(), now)
					if got.Candidate() || got.Action == Modify {
						t.Errorf("rightsize %v, %d of %d used now, peak %v: spared the second read but 5-minute data gives %s/%s",
							s.Rightsize, usedNow, total, peak, got.Action, got.Reason)
					}
				}
			}
		}
	}
}
