package report

import (
	"math"
	"time"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// Cents rounds an amount in dollars to the cent.
func Cents(v float64) float64 { return math.Round(v*100) / 100 }

// CommittedCost is what a commitment still costs from from until its end:
// its committed instances at perInstanceHour (the On-Demand list price),
// for every hour left; 0 when none is.
func CommittedCost(perInstanceHour float64, committed int32, from, end time.Time) float64 {
	hours := end.Sub(from).Hours()
	if hours <= 0 || committed <= 0 || perInstanceHour <= 0 {
		return 0
	}
	return Cents(perInstanceHour * float64(committed) * hours)
}

// CostsOf sums the figures of a run's final decisions: the idle capacity
// found, what the run's cancels and shrinks (r.Cancelled,
// r.AlreadyCancelled, r.Modified) removed, and in a dry run what they would
// remove. Nil when no decision has a figure.
func CostsOf(decisions []policy.Decision, r *Report) *Costs {
	c := &Costs{}
	done := map[string]bool{}
	for _, id := range append(append([]string{}, r.Cancelled...), r.AlreadyCancelled...) {
		done[id] = true
	}
	shrunk := map[string]Modified{}
	for _, m := range r.Modified {
		shrunk[m.ReservationID] = m
	}
	for _, d := range decisions {
		if d.Facts.MonthlyCost == nil {
			continue
		}
		c.Priced++
		m := *d.Facts.MonthlyCost
		c.IdleMonthly += m
		switch {
		case done[d.ReservationID]:
			c.RemovedMonthly += m
		case shrunk[d.ReservationID] != (Modified{}) && d.Resize != nil && d.Resize.From > d.Resize.Target:
			z := shrunk[d.ReservationID]
			c.RemovedMonthly += m * float64(z.From-z.To) / float64(d.Resize.From-d.Resize.Target)
		case r.DryRun && d.Action == policy.Cancel:
			c.WouldRemoveMonthly += m
		case r.DryRun && d.Action == policy.Modify:
			c.WouldRemoveMonthly += m * float64(d.Resize.From-d.Resize.To) / float64(d.Resize.From-d.Resize.Target)
		}
	}
	c.IdleMonthly, c.RemovedMonthly, c.WouldRemoveMonthly = Cents(c.IdleMonthly), Cents(c.RemovedMonthly), Cents(c.WouldRemoveMonthly)
	if c.Priced == 0 {
		return nil
	}
	return c
}
