package handler

// Evaluating a run (read and decide, nothing changed), its log, and its end.

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/dependents"
	"github.com/odcr-autocancel/odcr-autocancel/emf"
	"github.com/odcr-autocancel/odcr-autocancel/internal/auditlog"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
	"github.com/odcr-autocancel/odcr-autocancel/utilization"
)

// evaluate lists, screens, measures and checks every reservation, and plans.
// It makes no change to the account.
func (r *run) evaluate(ctx context.Context, ids []string, rep *report.Report) (policy.Plan, error) {
	reservations, err := describeReservations(ctx, r.c.EC2, r.calls, ids)
	if err != nil {
		return policy.Plan{}, err
	}
	// A run naming reservations is judged against the whole account's
	// idle share (the guard the scheduled run obeys), and decides on the
	// named ones only: the account is read and measured whole.
	var named map[string]bool
	if len(ids) > 0 && r.settings.MaxIdleSharePercent < 100 {
		named = make(map[string]bool, len(ids))
		for _, id := range ids {
			named[id] = true
		}
		if reservations, err = describeReservations(ctx, r.c.EC2, r.calls, nil); err != nil {
			return policy.Plan{}, err
		}
	}
	reservations, repeated := unique(reservations)
	r.progress("listed", len(reservations), len(reservations))
	if len(repeated) > 0 {
		r.audit.Warn("reservations listed more than once; one decision each", zap.Strings("reservation_ids", repeated))
	}
	r.markSharing(ctx, reservations, rep)

	now := r.started
	decisions := make([]policy.Decision, len(reservations))
	var measured []int // the reservations to measure, by index
	for i, res := range reservations {
		decisions[i] = policy.Screen(r.policy, res, now)
		// A reservation kept for its use may still be shrunk: measure it.
		if decisions[i].Candidate() || policy.RightsizeEligible(r.policy, decisions[i], res, now) {
			measured = append(measured, i)
		}
	}

	// What would launch into a reservation is read meanwhile.
	var pending *sweep
	if len(measured) > 0 {
		pending = r.startSweep(ctx)
	}
	read := r.readUtilization(ctx, reservations, decisions, measured, rep)
	usage := func(id string) *policy.Utilization {
		if got, ok := read[id]; ok {
			return &got
		}
		return nil
	}
	// The stopped instances matter to the idle candidates, and to those
	// that may be shrunk.
	var check []policy.Reservation
	for i, d := range decisions {
		if d.Candidate() {
			decisions[i] = policy.Judge(r.policy, d, usage(d.ReservationID))
		}
		if decisions[i].Candidate() || policy.RightsizeEligible(r.policy, decisions[i], reservations[i], now) {
			check = append(check, reservations[i])
		}
	}

	// One sweep of the instances: the stopped ones that need a
	// reservation, and the running ones beside an idle one.
	instances, problems := dependents.SweepInstances(ctx, r.c.EC2, r.calls, check, r.concurrency, true)
	rep.Problems = append(rep.Problems, problems...)
	r.reservations = make(map[string]policy.Reservation, len(reservations))
	var acting []policy.Reservation // what would be cancelled or shrunk
	for i, d := range decisions {
		dep := instances.Of(d.ReservationID)
		d = policy.Stopped(d, dep)
		if !d.Candidate() {
			d = policy.Rightsize(r.policy, d, reservations[i], usage(d.ReservationID), dep, now)
		}
		if d.Acts() {
			acting = append(acting, reservations[i])
		}
		decisions[i] = d
	}
	// What would launch into them: launch templates, Auto Scaling groups.
	refs := r.references(ctx, pending, acting, instances.Groups, rep)
	for i, d := range decisions {
		decisions[i] = policy.Referenced(r.policy, d, refs)
	}
	// The grace period: mark, wait, then cancel or shrink; unmark what is
	// no longer idle or oversized. Only a mark this function signed counts.
	r.checkMarks(ctx, reservations, decisions, rep)
	for i, d := range decisions {
		d = policy.AnnounceReferrers(policy.Grace(r.policy, d, reservations[i], now))
		if instances.Beside != nil {
			d = policy.Beside(d, instances.Beside.Beside(reservations[i]))
		}
		decisions[i] = d
		r.reservations[d.ReservationID] = reservations[i]
	}
	return policy.MakePlanOf(r.policy, decisions, named), nil
}

// logPlan writes one line per decision and one summary line. It runs before
// any cancel call, so the plan survives even if the run dies while acting.
func (r *run) logPlan(plan policy.Plan) {
	dryRun := r.settings.DryRun
	for _, d := range plan.Decisions {
		r.audit.Info("decision", decisionFields(d, dryRun)...)
	}
	lists := &auditlog.Lists{Audit: r.audit, Msg: "plan"}
	r.audit.Info("plan",
		zap.Bool("dry_run", dryRun),
		zap.Int("reservations", len(plan.Decisions)),
		zap.Int("eligible", plan.Eligible),
		zap.Int("oversized", plan.Oversized),
		zap.Int("idle", plan.Idle),
		zap.Int("to_cancel", len(plan.Cancel)),
		auditlog.ListField(lists, "cancel_ids", plan.Cancel),
		auditlog.ListField(lists, "mark_ids", plan.Mark),
		auditlog.ListField(lists, "unmark_ids", plan.Unmark),
		auditlog.ListField(lists, "modify_ids", plan.Modify),
		zap.Bool("aborted", plan.Aborted),
		zap.String("abort_reason", plan.AbortReason),
	)
	lists.Flush()
}

func decisionFields(d policy.Decision, dryRun bool) []zap.Field {
	f := []zap.Field{
		zap.String("reservation_id", d.ReservationID),
		zap.String("action", string(d.Action)),
		zap.String("reason", string(d.Reason)),
		zap.String("detail", d.Detail),
		zap.Bool("dry_run", dryRun),
		zap.String("state", d.Facts.State),
		zap.String("owner_id", d.Facts.OwnerID),
		zap.String("instance_type", d.Facts.InstanceType),
		zap.String("availability_zone", d.Facts.AvailabilityZone),
		zap.Float64("age_hours", d.Facts.AgeHours),
		zap.Float64("current_utilization_percent", d.Facts.CurrentUtilization),
	}
	if d.Facts.PeakUsed != nil {
		f = append(f, zap.Float64("peak_used_instances", *d.Facts.PeakUsed))
	}
	if d.Facts.PeakUtilization != nil {
		f = append(f, zap.Float64("peak_utilization_percent", *d.Facts.PeakUtilization))
	}
	if d.Facts.CoveragePercent != nil {
		f = append(f, zap.Float64("coverage_percent", *d.Facts.CoveragePercent))
	}
	if d.Facts.StoppedTargets != nil {
		f = append(f, zap.Int("stopped_targeting_instances", *d.Facts.StoppedTargets))
	}
	if len(d.Facts.Referrers) > 0 {
		refs := make([]string, len(d.Facts.Referrers))
		for i, ref := range d.Facts.Referrers {
			refs[i] = ref.String()
		}
		f = append(f, zap.Strings("referenced_by", refs))
	}
	if d.Facts.RunningBeside != nil {
		f = append(f, zap.Int("running_beside", *d.Facts.RunningBeside))
	}
	if d.Resize != nil {
		f = append(f, zap.Int32("from", d.Resize.From), zap.Int32("to", d.Resize.To), zap.Int32("target", d.Resize.Target))
	}
	if d.Facts.MonthlyCost != nil {
		f = append(f, zap.Float64("hourly_cost", *d.Facts.HourlyCost), zap.Float64("monthly_cost", *d.Facts.MonthlyCost))
	}
	if d.Mark != nil {
		f = append(f, zap.Time("idle_since", d.Mark.IdleSince), zap.Time("cancel_after", d.Mark.CancelAfter))
	}
	if d.Facts.CommitmentEnd != nil {
		f = append(f, zap.Time("commitment_end", *d.Facts.CommitmentEnd), zap.Int32("committed_instances", d.Facts.CommittedCount))
	}
	if d.Facts.CommittedCost != nil {
		f = append(f, zap.Float64("committed_cost", *d.Facts.CommittedCost))
	}
	if d.Facts.EndDate != nil {
		f = append(f, zap.Time("end_date", *d.Facts.EndDate))
	}
	return f
}

// finish fills the report, logs its summary and decides whether the
// invocation failed.
func (r *run) finish(rep *report.Report, plan policy.Plan, decisions []policy.Decision, notifyErr string) (*report.Report, error) {
	rep.FinishedAt = r.now()
	rep.Aborted = plan.Aborted
	rep.AbortReason = plan.AbortReason
	rep.Decisions = decisions
	rep.APICalls = r.calls.Snapshot()
	rep.Retries = r.retries.Count() - r.retriesBefore
	rep.Counts = report.Counts{
		Reservations: len(decisions),
		Eligible:     plan.Eligible,
		Oversized:    plan.Oversized,
		Idle:         plan.Idle,
		Planned:      len(plan.Cancel),
		Cancelled:    len(rep.Cancelled),
		Failed:       len(rep.Failures),
		NotAttempted: len(rep.NotAttempted),
		Marked:       len(rep.Marked),
		Modified:     len(rep.Modified),
		Unmarked:     len(rep.Unmarked),
		Reasons:      make(map[policy.Reason]int),
		Actions:      make(map[policy.Action]int),
		OutOfTime:    r.outOfTime,
	}
	for i := range decisions {
		decisions[i].AccountID, decisions[i].Region = rep.AccountID, rep.Region
	}
	for _, d := range decisions {
		rep.Counts.Reasons[d.Reason]++
		rep.Counts.Actions[d.Action]++
	}

	err := runFailed(plan, rep, decisions, notifyErr)
	msg := "run finished"
	if err != nil {
		msg = "run finished with failures"
	}
	lists := &auditlog.Lists{Audit: r.audit, Msg: msg}
	defer lists.Flush()
	summary := []zap.Field{
		zap.Bool("dry_run", rep.DryRun),
		zap.Any("counts", rep.Counts),
		auditlog.ListField(lists, "cancelled", rep.Cancelled),
		auditlog.ListField(lists, "already_cancelled", rep.AlreadyCancelled),
		auditlog.ListField(lists, "failures", rep.Failures),
		auditlog.ListField(lists, "not_attempted", rep.NotAttempted),
		auditlog.ListField(lists, "modified", rep.Modified),
		auditlog.ListField(lists, "marked", rep.Marked),
		auditlog.ListField(lists, "unmarked", rep.Unmarked),
		auditlog.ListField(lists, "tag_failures", rep.TagFailures),
		auditlog.ListField(lists, "problems", rep.Problems),
		zap.Bool("notified", rep.Notified),
		zap.Any("costs", rep.Costs),
		zap.Any("api_calls", rep.APICalls),
		zap.Int64("retries", rep.Retries),
		zap.Duration("duration", rep.FinishedAt.Sub(rep.StartedAt)),
	}
	r.logMetrics(rep)
	if err != nil {
		r.audit.Error(msg, append(summary, zap.Error(err))...)
		return rep, err
	}
	r.audit.Info(msg, summary...)
	return rep, nil
}

func effective(s Settings, req Request, w utilization.Window) report.Effective {
	e := report.Effective{
		DryRun:               s.DryRun,
		IdleThresholdPercent: s.IdleThresholdPercent,
		LookbackHours:        s.LookbackHours,
		MinCoveragePercent:   s.MinCoveragePercent,
		ProtectTagKey:        s.ProtectTagKey,
		MaxCancellations:     s.MaxCancellations,
		MaxIdleSharePercent:  s.MaxIdleSharePercent,
		InstanceTypes:        s.InstanceTypes,
		AvailabilityZones:    s.AvailabilityZones,
		ReservationIDs:       req.ReservationIDs,
		WindowStart:          w.Start.Format(time.RFC3339),
		WindowEnd:            w.End.Format(time.RFC3339),
		PeriodSeconds:        int(w.Period / time.Second),
		GraceHours:           s.GraceHours,
	}
	if s.RequiredTagKey != "" {
		e.RequiredTag = s.RequiredTagKey
		if s.RequiredTagValue != "" {
			e.RequiredTag += "=" + s.RequiredTagValue
		}
	}
	return e
}

// policy is the policy's settings for a run in account.
func (s Settings) policy(account string) policy.Settings {
	return policy.Settings{
		AccountID:            account,
		IdleThresholdPercent: s.IdleThresholdPercent,
		Lookback:             time.Duration(s.LookbackHours) * time.Hour,
		MinCoveragePercent:   s.MinCoveragePercent,
		ProtectTagKey:        s.ProtectTagKey,
		RequiredTagKey:       s.RequiredTagKey,
		RequiredTagValue:     s.RequiredTagValue,
		InstanceTypes:        s.InstanceTypes,
		AvailabilityZones:    s.AvailabilityZones,
		MaxCancellations:     s.MaxCancellations,
		MaxIdleSharePercent:  s.MaxIdleSharePercent,
		PublishingInterval:   utilization.PublishingInterval,
		Grace:                time.Duration(s.GraceHours) * time.Hour,

		Rightsize:                s.Rightsize,
		RightsizeHeadroomPercent: s.RightsizeHeadroomPercent,
		RightsizeMinInstances:    s.RightsizeMinInstances,
		MaxModifications:         s.MaxModifications,
		KeepReferenced:           s.KeepReferenced,
	}
}

// logMetrics writes the run's EMF record (package emf) through the audit
// logger, so at every LOG_LEVEL.
func (r *run) logMetrics(rep *report.Report) {
	r.audit.Info(emf.Message, emf.Record(rep, r.region, emf.FunctionName())...)
}

// runFailed is the error of a run that completed but must show as failed
// (aborted, an action failed or was not attempted, the notification not
// sent), nil otherwise.
func runFailed(plan policy.Plan, rep *report.Report, decisions []policy.Decision, notifyErr string) error {
	switch {
	case plan.Aborted:
		return &RunFailedError{Aborted: plan.AbortReason, Notify: notifyErr}
	case len(rep.Failures) > 0 || len(rep.NotAttempted) > 0 || len(rep.TagFailures) > 0 || notifyErr != "":
		cancels, shrinks := splitFailures(rep.Failures, decisions)
		return &RunFailedError{Failures: cancels, ShrinkFailures: shrinks, NotAttempted: rep.NotAttempted, TagFailures: rep.TagFailures, Notify: notifyErr}
	}
	return nil
}

// splitFailures tells the cancels that failed from the shrinks that failed:
// a failed action leaves its decision as it was, so a failure whose
// reservation's decision is a modification is a shrink's.
func splitFailures(failures []report.Failure, decisions []policy.Decision) (cancels, shrinks []report.Failure) {
	modify := map[string]bool{}
	for _, d := range decisions {
		if d.Action == policy.Modify {
			modify[d.ReservationID] = true
		}
	}
	for _, f := range failures {
		if modify[f.ReservationID] {
			shrinks = append(shrinks, f)
		} else {
			cancels = append(cancels, f)
		}
	}
	return cancels, shrinks
}
