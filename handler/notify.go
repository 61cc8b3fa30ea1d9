package handler

// The run's notification step: what the owners are told (noticeOf, pure)
// and sending it once everything is done. Package notify renders and
// publishes the message.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/notify"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// notify tells the owners what the run did (or, in a dry run, would do),
// once all of it is done: one message, only when there is something to say.
// It returns why the message could not be sent, "" when it was sent or
// there was none to send; a failed publish is in the report's problems and
// changes no decision.
func (r *run) notify(ctx context.Context, sns notify.Publisher, plan policy.Plan, decisions []policy.Decision, rep *report.Report) string {
	s := r.settings
	if s.NotifyTopicARN == "" {
		return ""
	}
	n := noticeOf(s, plan, decisions, rep, r.reservations, r.started)
	n.OutOfTime = r.outOfTime
	for _, d := range decisions {
		if d.Reason == policy.ReasonReferrersUnknown || d.Reason == policy.ReasonMarkUnverified {
			n.Unchecked++
		}
	}
	if !n.Worth() {
		return ""
	}
	r.calls.Add("Publish")
	if err := notify.Publish(ctx, sns, s.NotifyTopicARN, notify.Build(n)); err != nil {
		rep.Problems = append(rep.Problems, err.Error())
		r.audit.Error("notification not sent", zap.String("topic_arn", s.NotifyTopicARN), zap.Error(err))
		return err.Error()
	}
	rep.Notified = true
	r.audit.Info("notification sent", zap.String("topic_arn", s.NotifyTopicARN), zap.Int("items", len(n.Items)))
	return ""
}

// noticeOf gathers what the owners need to know of the run: what failed,
// what was cancelled, marked or unmarked (in a dry run, what would be), and
// the snooze values that cannot be read. reservations are the descriptions
// evaluated, by id; started is the run's start.
func noticeOf(s Settings, plan policy.Plan, decisions []policy.Decision, rep *report.Report, reservations map[string]policy.Reservation, started time.Time) notify.Notice {
	n := notify.Notice{
		RunID: rep.RunID, AccountID: rep.AccountID, Region: rep.Region, Version: rep.Version,
		DryRun: rep.DryRun, Aborted: plan.Aborted, AbortReason: plan.AbortReason,
		ProtectTagKey: s.ProtectTagKey, Now: started, Problems: rep.Problems, Costs: rep.Costs,
	}
	byID := make(map[string]policy.Decision, len(decisions))
	for _, d := range decisions {
		byID[d.ReservationID] = d
	}
	add := func(action notify.Action, id, detail string) {
		d := byID[id]
		res := reservations[id]
		it := notify.Item{
			Action: action, ReservationID: id,
			InstanceType: res.InstanceType, Platform: res.Platform, AvailabilityZone: res.AvailabilityZone,
			InstanceCount: res.Total, Tags: notify.Tags(res.Tags, s.NotifyTags),
			Reason: string(d.Reason), Detail: cmp.Or(detail, d.Detail),
		}
		switch {
		case d.Mark != nil && d.Resize == nil:
			it.IdleSince, it.CancelAfter = d.Mark.IdleSince, d.Mark.CancelAfter
		case d.Mark != nil:
			it.ShrinkSince, it.ShrinkAfter = d.Mark.IdleSince, d.Mark.CancelAfter
		}
		if d.Facts.MonthlyCost != nil {
			it.MonthlyCost = *d.Facts.MonthlyCost
		}
		if d.Facts.CommitmentEnd != nil {
			it.CommitmentEnd = *d.Facts.CommitmentEnd
		}
		if d.Facts.CommittedCost != nil {
			it.CommittedCost = *d.Facts.CommittedCost
		}
		if d.Facts.EndDate != nil {
			it.EndDate = *d.Facts.EndDate
		}
		n.Items = append(n.Items, it)
	}
	for _, f := range slices.Concat(rep.Failures, rep.TagFailures) {
		add(notify.Failed, f.ReservationID, f.Code+": "+f.Message)
	}
	for _, id := range rep.NotAttempted {
		add(notify.Failed, id, "not attempted: the invocation deadline was near")
	}
	if rep.DryRun {
		// What a real run would do.
		for _, d := range decisions {
			switch d.Action {
			case policy.Cancel:
				add(notify.Cancelled, d.ReservationID, "")
			case policy.Modify:
				add(notify.Shrunk, d.ReservationID, "")
			case policy.Mark:
				if d.Resize != nil {
					add(notify.MarkedShrink, d.ReservationID, "")
					continue
				}
				add(notify.Marked, d.ReservationID, "")
			case policy.Unmark:
				add(notify.Unmarked, d.ReservationID, "")
			}
		}
	} else {
		for _, id := range slices.Concat(rep.Cancelled, rep.AlreadyCancelled) {
			add(notify.Cancelled, id, "")
		}
		for _, m := range rep.Modified {
			add(notify.Shrunk, m.ReservationID, fmt.Sprintf("shrunk from %d to %d instances", m.From, m.To))
		}
		for _, id := range rep.Marked {
			if byID[id].Resize != nil {
				add(notify.MarkedShrink, id, "")
				continue
			}
			add(notify.Marked, id, "")
		}
		for _, id := range rep.Unmarked {
			add(notify.Unmarked, id, "")
		}
	}
	for _, d := range decisions {
		switch {
		case d.Facts.SnoozeInvalid:
			add(notify.SnoozedInvalid, d.ReservationID, "")
		case d.Reason == policy.ReasonEndsSoon:
			add(notify.EndsSoon, d.ReservationID, "")
		}
	}
	return n
}
