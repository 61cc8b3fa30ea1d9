package handler

// The run's cost figures: a price on every decision about idle capacity.
// Package price reads the prices.

import (
	"context"

	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/price"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// unusedInstances is what a decision's figure counts: a whole idle
// reservation, or the part above an oversized one's target; 0 when the
// decision is about neither.
func unusedInstances(d policy.Decision) int32 {
	switch {
	case d.Resize != nil:
		return d.Resize.From - d.Resize.Target
	case d.Reason == policy.ReasonIdle, d.Reason == policy.ReasonInGrace, d.Reason == policy.ReasonIdleInCommitment,
		d.Reason == policy.ReasonBudgetExhausted, d.Reason == policy.ReasonIdleShareExceeded:
		return d.Facts.TotalInstanceCount
	}
	return 0
}

// estimateCosts puts a price on every decision about idle capacity (marked,
// cancelled, shrunk, in grace, kept by the budget or the guard): its unused
// instances at the On-Demand hourly price of its instance type, platform,
// tenancy and region, per hour and per month. The figures change no
// decision; a price that cannot be read leaves the decision without one.
func (r *run) estimateCosts(ctx context.Context, api price.API, decisions []policy.Decision) {
	if api == nil || r.region == "" {
		return
	}
	keyOf := func(id string) price.Key {
		res := r.reservations[id]
		return price.Key{InstanceType: res.InstanceType, Region: r.region, Platform: res.Platform, Tenancy: res.Tenancy}
	}
	seen := map[price.Key]bool{}
	var keys []price.Key
	for _, d := range decisions {
		if unusedInstances(d) > 0 && !seen[keyOf(d.ReservationID)] {
			seen[keyOf(d.ReservationID)] = true
			keys = append(keys, keyOf(d.ReservationID))
		}
	}
	if len(keys) == 0 {
		return
	}
	// A price that cannot be read is no figure, not a problem of the run:
	// the problems list what was kept for want of data; this keeps nothing.
	prices, missing := price.Lookup(ctx, api, r.calls, keys, r.concurrency)
	if len(missing) > 0 {
		r.log.Warn("some prices could not be read; those reservations have no cost figure",
			zap.Int("count", len(missing)), zap.Strings("missing", missing[:min(len(missing), 20)]))
	}
	for i, d := range decisions {
		n := unusedInstances(d)
		p, ok := prices[keyOf(d.ReservationID)]
		if n <= 0 || !ok {
			continue
		}
		hourly := report.Cents(float64(n) * p)
		monthly := report.Cents(float64(n) * p * report.HoursPerMonth)
		decisions[i].Facts.HourlyCost, decisions[i].Facts.MonthlyCost = &hourly, &monthly
		if end := d.Facts.CommitmentEnd; end != nil {
			committed := report.CommittedCost(p, d.Facts.CommittedCount, r.started, *end)
			decisions[i].Facts.CommittedCost = &committed
		}
	}
}
