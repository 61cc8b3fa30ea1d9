package handler

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/dependents"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// sweep is the launch templates and Auto Scaling groups being read.
type sweep struct {
	done     chan struct{}
	launches []policy.Launch
	err      error
}

// startSweep reads, in the background, what would launch into a
// reservation (package dependents: the launch templates and the Auto
// Scaling groups of the region), while the utilization is read: the two
// sweeps then add next to nothing to the run's time. It is started only
// when some reservation is measured, so may be cancelled or shrunk (a run
// with nothing to measure makes no such call), and again by the
// re-verification right before acting, with the template versions the
// first sweep described by number kept (r.pinned).
func (r *run) startSweep(ctx context.Context) *sweep {
	s := &sweep{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.launches, s.err = dependents.Sweep(ctx, r.c.EC2, r.c.AutoScaling, r.calls, r.concurrency, &r.pinned)
	}()
	return s
}

// references finds who refers to each reservation that would be cancelled
// or shrunk (package policy), from the sweep. It returns nil when none
// would act. When a sweep failed or was denied (or never started), the
// References say what could not be read: nothing is cancelled or shrunk in
// the run. groups are the reservation groups already listed (by the
// stopped-instance check).
func (r *run) references(ctx context.Context, pending *sweep, acting []policy.Reservation, groups map[string][]string, rep *report.Report) *policy.References {
	if pending != nil {
		<-pending.done
	}
	if len(acting) == 0 {
		return nil
	}
	unknown := func(what string, err error) *policy.References {
		r.audit.Warn(what+" not read; nothing cancelled or shrunk", zap.Error(err))
		rep.Problems = append(rep.Problems, fmt.Sprintf("%s not read, %d reservations kept: %v", what, len(acting), err))
		return &policy.References{Unknown: what}
	}
	if pending == nil {
		return unknown("launch templates and Auto Scaling groups", errors.New("not read"))
	}
	launches, err := pending.launches, pending.err
	if err != nil {
		what := "launch templates and Auto Scaling groups"
		if e := (*dependents.Error)(nil); errors.As(err, &e) {
			what = e.What
		}
		return unknown(what, err)
	}
	index := policy.IndexReferences(launches)
	if len(index.TargetedGroups()) > 0 {
		var missing []string
		for _, res := range acting {
			if _, ok := groups[res.ID]; !ok {
				missing = append(missing, res.ID)
			}
		}
		listed, problems := dependents.GroupsOf(ctx, r.c.EC2, r.calls, missing, r.concurrency)
		if len(problems) > 0 {
			return unknown("Capacity Reservation groups", errors.New(problems[0]))
		}
		all := make(map[string][]string, len(groups)+len(listed))
		for id, g := range groups {
			all[id] = g
		}
		for id, g := range listed {
			all[id] = g
		}
		groups = all
	}
	refs := &policy.References{By: map[string][]policy.Referrer{}}
	for _, res := range acting {
		if rs := index.Referrers(res, groups[res.ID]); len(rs) > 0 {
			refs.By[res.ID] = rs
		}
	}
	return refs
}
