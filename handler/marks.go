package handler

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/marks"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// The run's part of signed marks (package marks): check the marks the
// policy is about to read, sign the marks it writes, sign a shrink's mark
// again at the size a shrink step left, and carry a check over to the
// description taken again before acting when nothing of the mark changed.

// checkMarks checks the signatures of the marks that Grace will read: the
// idle mark of an idle candidate, the shrink's mark of a planned shrink.
// Without a signer (a preview without MARK_KEY_ID) marks stay unchecked,
// and the policy reads them as written (SignedMarks is unset then).
func (r *run) checkMarks(ctx context.Context, reservations []policy.Reservation, decisions []policy.Decision, rep *report.Report) {
	if r.signer == nil {
		return
	}
	var (
		items []marks.Item
		at    []int // the reservation index of each item
	)
	for i, d := range decisions {
		res := reservations[i]
		switch {
		case d.Action == policy.Modify && res.RightsizeMarked():
			items = append(items, marks.Item{Reservation: res, Kind: marks.Rightsize})
		case d.Candidate() && d.Stage == policy.StageChecked && d.Reason == policy.ReasonIdle && res.Marked():
			items = append(items, marks.Item{Reservation: res, Kind: marks.Idle})
		default:
			continue
		}
		at = append(at, i)
	}
	if len(items) == 0 {
		return
	}
	checks, errs := r.signer.CheckAll(ctx, items)
	counts := map[policy.MarkCheck]int{}
	for j, c := range checks {
		counts[c]++
		if items[j].Kind == marks.Rightsize {
			reservations[at[j]].RightsizeMarkCheck = c
		} else {
			reservations[at[j]].MarkCheck = c
		}
	}
	for _, err := range errs {
		rep.Problems = append(rep.Problems, fmt.Sprintf("marks not checked, %d reservations kept: %v", counts[policy.MarkUnverifiable], err))
	}
	r.audit.Info("marks checked", zap.Int("signed", counts[policy.MarkSigned]), zap.Int("not_signed", counts[policy.MarkForged]),
		zap.Int("unverifiable", counts[policy.MarkUnverifiable]))
}

// signMarks signs the plan's marks: for each reservation to mark, its
// mark's tags with the signature added. A mark that could not be signed is
// not written: it is reported as a tag failure, and the reservation is
// marked by a later run (unmarked, it is never acted on).
func (r *run) signMarks(ctx context.Context, plan policy.Plan, byID map[string]policy.Decision, rep *report.Report) map[string]map[string]string {
	signed := make(map[string]map[string]string, len(plan.Mark))
	for _, id := range plan.Mark {
		d := byID[id]
		if d.Mark == nil {
			continue
		}
		kind, tags := marks.Of(d)
		out, err := r.signer.Sign(ctx, kind, id, r.reservations[id].Total, tags)
		if err != nil {
			r.tagFailed("mark", []string{id}, err, rep)
			continue
		}
		signed[id] = out
	}
	return signed
}

// resignShrink signs a shrink's mark again at the size a shrink step left
// (a shrink in several steps goes on from the mark it announced); if that
// fails, the next run marks it again and the shrink waits a new grace.
func (r *run) resignShrink(ctx context.Context, d policy.Decision, size int32, rep *report.Report) {
	if d.Mark == nil || d.Resize == nil || size <= d.Resize.Target {
		return
	}
	tags, err := r.signer.Sign(ctx, marks.Rightsize, d.ReservationID, size, policy.RightsizeTags(*d.Mark, d.Resize.Target))
	if err == nil {
		err = r.createTags(ctx, []string{d.ReservationID}, tags)
	}
	if err != nil {
		r.tagFailed("mark", []string{d.ReservationID}, err, rep)
		return
	}
	r.audit.Info("shrink mark signed at the new size", zap.String("reservation_id", d.ReservationID), zap.Int32("size", size))
}
