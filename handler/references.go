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

// references reads what would launch into the reservations that would be
// cancelled or shrunk (package dependents: the launch templates and the
// Auto Scaling groups of the region) and finds who refers to each (package
// policy). It returns nil when none would act, so a run with nothing to do
// makes no call. When a sweep fails or is denied, the References say what
// could not be read: nothing is cancelled or shrunk in the run. groups are
// the reservation groups already listed (by the stopped-instance check).
func (r *run) references(ctx context.Context, acting []policy.Reservation, groups map[string][]string, rep *report.Report) *policy.References {
	if len(acting) == 0 {
		return nil
	}
	unknown := func(what string, err error) *policy.References {
		r.audit.Warn(what+" not read; nothing cancelled or shrunk", zap.Error(err))
		rep.Problems = append(rep.Problems, fmt.Sprintf("%s not read, %d reservations kept: %v", what, len(acting), err))
		return &policy.References{Unknown: what}
	}
	launches, err := dependents.Sweep(ctx, r.c.EC2, r.c.AutoScaling, r.calls, r.concurrency)
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
		listed, problems := groupsOf(ctx, r.c.EC2, r.calls, missing, r.concurrency)
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
