package handler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/dependents"
	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/marks"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// cancelAndShrink re-verifies the planned cancels and shrinks, together, and makes
// those that still hold: the cancels first, then the shrinks. It returns
// the final decisions (an action that changed since evaluation is kept).
func (r *run) cancelAndShrink(ctx context.Context, plan policy.Plan, rep *report.Report) []policy.Decision {
	decisions := slices.Clone(plan.Decisions)
	index := make(map[string]int, len(decisions))
	for i, d := range decisions {
		index[d.ReservationID] = i
	}
	if !r.reverify(ctx, slices.Concat(plan.Cancel, plan.Modify), decisions, index, rep) {
		return decisions
	}
	still := func(ids []string, a policy.Action) []string {
		return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return decisions[index[id]].Action != a })
	}
	r.each(ctx, "cancels", "cancelled", still(plan.Cancel, policy.Cancel), rep, func(id string) {
		switch f := r.cancel(ctx, id); {
		case f == nil:
			rep.Cancelled = append(rep.Cancelled, id)
			r.audit.Info("cancelled", zap.String("reservation_id", id))
		case f.Code == awsapi.CodeIncorrectState && r.cancelledMeanwhile(ctx, id):
			// Someone else cancelled it between the re-verification and
			// our call: the goal is met, it is not a failure.
			rep.AlreadyCancelled = append(rep.AlreadyCancelled, id)
			r.audit.Info("already cancelled by someone else", zap.String("reservation_id", id))
		default:
			rep.Failures = append(rep.Failures, *f)
			r.audit.Error("cancel failed", zap.String("reservation_id", id), zap.String("code", f.Code), zap.String("error", f.Message))
		}
	})
	r.each(ctx, "shrinks", "shrunk", still(plan.Modify, policy.Modify), rep, func(id string) {
		z := decisions[index[id]].Resize
		if f := r.modify(ctx, id, z.To); f != nil {
			rep.Failures = append(rep.Failures, *f)
			r.audit.Error("shrink failed", zap.String("reservation_id", id), zap.String("code", f.Code), zap.String("error", f.Message))
			return
		}
		rep.Modified = append(rep.Modified, report.Modified{ReservationID: id, From: z.From, To: z.To})
		r.audit.Info("shrunk", zap.String("reservation_id", id), zap.Int32("from", z.From), zap.Int32("to", z.To), zap.Int32("target", z.Target))
		if r.signer != nil {
			r.resignShrink(ctx, decisions[index[id]], z.To, rep)
		}
	})
	return decisions
}

// reverify checks the world again right before acting, since it may have
// changed since the evaluation: one describe of every planned reservation,
// one listing of the shares, one sweep of the stopped instances, one of the
// launch templates and Auto Scaling groups (while the reservations are
// described), and each decision re-checked by the policy (a cancel by
// Recheck, a shrink by RecheckModify, both by RecheckStopped and
// Referenced). It reports false, with every planned reservation in
// failures, when the reservations could not be described again: then
// nothing is attempted.
func (r *run) reverify(ctx context.Context, ids []string, decisions []policy.Decision, index map[string]int, rep *report.Report) bool {
	launches := r.startSweep(ctx)
	fresh, err := describeReservations(ctx, r.c.EC2, r.calls, ids)
	if err != nil {
		<-launches.done
		r.audit.Error("re-verification failed; no cancel attempted", zap.Error(err))
		for _, id := range ids {
			rep.Failures = append(rep.Failures, report.Failure{ReservationID: id, Code: awsapi.ErrorCode(err), Message: "re-verify before acting: " + err.Error()})
		}
		return false
	}
	// A share created during the run wins too.
	r.markSharing(ctx, fresh, rep)
	marks.CarryChecks(r.reservations, fresh)
	byID := make(map[string]policy.Reservation, len(fresh))
	for _, res := range fresh {
		byID[res.ID] = res
	}
	now := r.now()
	var verified []policy.Reservation
	for _, id := range ids {
		var res *policy.Reservation
		if got, ok := byID[id]; ok {
			res = &got
		}
		d := decisions[index[id]]
		if d.Action == policy.Modify {
			d = policy.RecheckModify(r.policy, d, res, now)
		} else {
			d = policy.Recheck(r.policy, d, res, now)
		}
		decisions[index[id]] = d
		if d.Acts() {
			verified = append(verified, *res)
		}
	}
	check, problems := dependents.SweepInstances(ctx, r.c.EC2, r.calls, verified, r.concurrency, false)
	rep.Problems = append(rep.Problems, problems...)
	var acting []policy.Reservation
	for _, res := range verified {
		decisions[index[res.ID]] = policy.RecheckStopped(decisions[index[res.ID]], check.Of(res.ID))
		if decisions[index[res.ID]].Acts() {
			acting = append(acting, res)
		}
	}
	// A launch template or an Auto Scaling group made during the run wins
	// too, and one that can no longer be read keeps them all.
	refs := r.references(ctx, launches, acting, check.Groups, rep)
	for _, res := range acting {
		decisions[index[res.ID]] = policy.Referenced(r.policy, decisions[index[res.ID]], refs)
	}
	for _, id := range ids {
		if d := decisions[index[id]]; !d.Acts() {
			what := "cancel"
			if d.Resize != nil {
				what = "shrink"
			}
			r.audit.Warn("decision changed before "+what, decisionFields(d, false)...)
		}
	}
	return true
}

// each does one action per reservation, in order, with the progress told;
// none starts within the deadline margin: those left are not attempted.
// plural names the actions in the log ("cancels"), step the progress.
func (r *run) each(ctx context.Context, plural, step string, ids []string, rep *report.Report, do func(id string)) {
	// ctx ends three quarters of the margin before the invocation's
	// deadline: the last quarter left means the margin is reached.
	deadline, hasDeadline := ctx.Deadline()
	for n, id := range ids {
		if hasDeadline && time.Until(deadline) < r.margin/4 {
			rep.NotAttempted = append(rep.NotAttempted, ids[n:]...)
			r.audit.Error("invocation deadline near; remaining "+plural+" not attempted",
				zap.Strings("not_attempted", ids[n:]), zap.Duration("margin", r.margin))
			return
		}
		do(id)
		r.progress(step, n+1, len(ids))
	}
}

// dryRunFirst makes one change with EC2's discipline: call with DryRun
// first, which checks the permission (IAM refuses a protected reservation),
// then, only if EC2 answered DryRunOperation, for real. what names the
// operation in the failure ("cancel capacity reservation").
func dryRunFirst(id, what string, call func(dryRun bool) (returned bool, err error)) *report.Failure {
	_, err := call(true)
	if code := awsapi.ErrorCode(err); code != awsapi.CodeDryRunOperation {
		if err == nil {
			err, code = errors.New("dry run answered without DryRunOperation"), "UnexpectedDryRunAnswer"
		}
		return &report.Failure{ReservationID: id, Code: code, Message: fmt.Sprintf("%s, refused at its permission check (the DryRun call made before the real one): %v", what, err)}
	}
	returned, err := call(false)
	switch {
	case err != nil:
		return &report.Failure{ReservationID: id, Code: awsapi.ErrorCode(err), Message: fmt.Sprintf("%s: %v", what, err)}
	case !returned:
		return &report.Failure{ReservationID: id, Code: "ReturnFalse", Message: what + ": EC2 returned false"}
	}
	return nil
}

// dryRunFlag is the DryRun parameter of a call: true, or absent.
func dryRunFlag(dryRun bool) *bool {
	if dryRun {
		return aws.Bool(true)
	}
	return nil
}

// cancel cancels one reservation, dry run first.
func (r *run) cancel(ctx context.Context, id string) *report.Failure {
	return dryRunFirst(id, "cancel capacity reservation", func(dryRun bool) (bool, error) {
		r.calls.Add("CancelCapacityReservation")
		out, err := r.c.EC2.CancelCapacityReservation(ctx, &ec2.CancelCapacityReservationInput{
			CapacityReservationId: aws.String(id), DryRun: dryRunFlag(dryRun),
		})
		return out != nil && aws.ToBool(out.Return), err
	})
}

// modify shrinks one reservation to count instances, dry run first.
func (r *run) modify(ctx context.Context, id string, count int32) *report.Failure {
	return dryRunFirst(id, "modify capacity reservation", func(dryRun bool) (bool, error) {
		r.calls.Add("ModifyCapacityReservation")
		out, err := r.c.EC2.ModifyCapacityReservation(ctx, &ec2.ModifyCapacityReservationInput{
			CapacityReservationId: aws.String(id), InstanceCount: aws.Int32(count), DryRun: dryRunFlag(dryRun),
		})
		return out != nil && aws.ToBool(out.Return), err
	})
}

// cancelledMeanwhile tells whether a reservation whose cancel EC2 refused
// for its state is cancelled (or being cancelled) now.
func (r *run) cancelledMeanwhile(ctx context.Context, id string) bool {
	res, err := describeReservations(ctx, r.c.EC2, r.calls, []string{id})
	if err != nil || len(res) != 1 {
		return false
	}
	return res[0].State == "cancelled" || res[0].State == "cancelling"
}
