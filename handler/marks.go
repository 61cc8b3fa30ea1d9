package handler

import (
	"context"
	"fmt"
	"slices"
	"sync"

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

// markConcurrency bounds the marks written at once: a signed mark names
// its reservation, so each is a GenerateMac and a CreateTags of its own.
const markConcurrency = 8

// writeMarks signs and writes the plan's marks, markConcurrency at a time
// and their CreateTags paced (Settings.tagWriteEvery), and reports them in the
// plan's order. A mark that could not be signed or written is a tag
// failure. A mark whose CreateTags would start near the invocation's
// deadline (within the last quarter of the margin) is not started: the
// reservations left are told as a problem and marked by a later run
// (unmarked, a reservation is never acted on).
func (r *run) writeMarks(ctx context.Context, plan policy.Plan, byID map[string]policy.Decision, rep *report.Report) {
	deadline, hasDeadline := ctx.Deadline()
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		done   = map[string]bool{}
		late   []string
		tokens = make(chan struct{}, markConcurrency)
	)
	for n, id := range plan.Mark {
		d := byID[id]
		if d.Mark == nil {
			continue
		}
		tokens <- struct{}{}
		at := r.tagWrites.Reserve(r.settings.tagWriteEvery())
		if hasDeadline && deadline.Sub(at) < r.margin/4 {
			<-tokens
			late = slices.DeleteFunc(slices.Clone(plan.Mark[n:]), func(id string) bool { return byID[id].Mark == nil })
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-tokens; wg.Done() }()
			kind, tags := marks.Of(d)
			signed, err := r.signer.Sign(ctx, kind, id, r.reservations[id].Total, tags)
			if err == nil {
				err = r.createTags(ctx, at, []string{id}, signed)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				r.tagFailed("mark", []string{id}, err, rep)
				return
			}
			done[id] = true
			r.audit.Info("marked", zap.String("reservation_id", id), zap.Any("tags", signed))
		}()
	}
	wg.Wait()
	for _, id := range plan.Mark {
		if done[id] {
			rep.Marked = append(rep.Marked, id)
		}
	}
	if len(late) > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d reservations not marked for lack of time: a later run marks them (unmarked, none is acted on)", len(late)))
		r.audit.Warn("invocation deadline near; remaining marks not written", zap.Strings("reservation_ids", late))
	}
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
		err = r.createTags(ctx, r.tagWrites.Reserve(r.settings.tagWriteEvery()), []string{d.ReservationID}, tags)
	}
	if err != nil {
		r.tagFailed("mark", []string{d.ReservationID}, err, rep)
		return
	}
	r.audit.Info("shrink mark signed at the new size", zap.String("reservation_id", d.ReservationID), zap.Int32("size", size))
}
