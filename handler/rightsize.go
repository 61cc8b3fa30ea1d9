package handler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// Resizer is the part of EC2 that shrinks a reservation.
type Resizer interface {
	ModifyCapacityReservation(context.Context, *ec2.ModifyCapacityReservationInput, ...func(*ec2.Options)) (*ec2.ModifyCapacityReservationOutput, error)
}

// Modified is a shrink made.
type Modified struct {
	ReservationID string `json:"reservationId"`
	From          int32  `json:"from"`
	To            int32  `json:"to"`
}

// applyModifies re-verifies the planned shrinks and makes them, with the
// discipline of a cancel: one describe of them all again (and their shares,
// and the stopped instances), then for each a DryRun call and the real one;
// one failure does not stop the others; none starts within the deadline
// margin. It returns the final decisions.
func (r *run) applyModifies(ctx context.Context, plan policy.Plan, decisions []policy.Decision, report *Report) []policy.Decision {
	index := make(map[string]int, len(decisions))
	for i, d := range decisions {
		index[d.ReservationID] = i
	}
	fresh, err := describeReservations(ctx, r.h.EC2, r.calls, plan.Modify)
	if err != nil {
		r.audit.Error("re-verification failed; no shrink attempted", zap.Error(err))
		for _, id := range plan.Modify {
			report.Failures = append(report.Failures, Failure{ReservationID: id, Code: errorCode(err), Message: "re-verify before shrink: " + err.Error()})
		}
		return decisions
	}
	r.markSharing(ctx, fresh, report)
	byID := make(map[string]policy.Reservation, len(fresh))
	for _, res := range fresh {
		byID[res.ID] = res
	}
	now := r.h.Now()
	var verified []policy.Reservation
	for _, id := range plan.Modify {
		var res *policy.Reservation
		if got, ok := byID[id]; ok {
			res = &got
		}
		d := policy.RecheckModify(r.policy, decisions[index[id]], res, now)
		decisions[index[id]] = d
		if d.Action == policy.Modify {
			verified = append(verified, *res)
		}
	}
	deps, problems := stoppedDependents(ctx, r.h.EC2, r.calls, verified, r.h.metricConcurrency())
	report.Problems = append(report.Problems, problems...)
	var todo []string
	for _, res := range verified {
		d := decisions[index[res.ID]]
		dep := dependentsOf(deps, res.ID)
		if dep == nil || dep.Total() > 0 {
			d.Action, d.Reason = policy.Keep, policy.ReasonChangedSinceEvaluated
			d.Detail = "stopped instances that may need it appeared, or could not be listed again"
			decisions[index[res.ID]] = d
			continue
		}
		todo = append(todo, res.ID)
	}
	for _, id := range plan.Modify {
		if d := decisions[index[id]]; d.Action != policy.Modify {
			r.audit.Warn("decision changed before shrink", decisionFields(d, false)...)
		}
	}

	deadline, hasDeadline := ctx.Deadline()
	for n, id := range todo {
		if hasDeadline && time.Until(deadline) < r.margin/4 {
			report.NotAttempted = append(report.NotAttempted, todo[n:]...)
			r.audit.Error("invocation deadline near; remaining shrinks not attempted",
				zap.Strings("not_attempted", todo[n:]), zap.Duration("margin", r.margin))
			break
		}
		z := decisions[index[id]].Resize
		f := r.modify(ctx, id, z.To)
		r.progress("shrunk", n+1, len(todo))
		if f != nil {
			report.Failures = append(report.Failures, *f)
			r.audit.Error("shrink failed", zap.String("reservation_id", id), zap.String("code", f.Code), zap.String("error", f.Message))
			continue
		}
		report.Modified = append(report.Modified, Modified{ReservationID: id, From: z.From, To: z.To})
		r.audit.Info("shrunk", zap.String("reservation_id", id), zap.Int32("from", z.From), zap.Int32("to", z.To), zap.Int32("target", z.Target))
	}
	return decisions
}

// modify asks EC2 with DryRun first (IAM refuses a protected reservation),
// then shrinks for real.
func (r *run) modify(ctx context.Context, id string, count int32) *Failure {
	r.calls.add("ModifyCapacityReservation")
	_, err := r.h.EC2.ModifyCapacityReservation(ctx, &ec2.ModifyCapacityReservationInput{
		CapacityReservationId: aws.String(id), InstanceCount: aws.Int32(count), DryRun: aws.Bool(true),
	})
	if code := errorCode(err); code != codeDryRunOperation {
		if err == nil {
			err, code = errors.New("dry run answered without DryRunOperation"), "UnexpectedDryRunAnswer"
		}
		return &Failure{ReservationID: id, Code: code, Message: fmt.Sprintf("modify capacity reservation (dry run): %v", err)}
	}
	r.calls.add("ModifyCapacityReservation")
	out, err := r.h.EC2.ModifyCapacityReservation(ctx, &ec2.ModifyCapacityReservationInput{
		CapacityReservationId: aws.String(id), InstanceCount: aws.Int32(count),
	})
	if err != nil {
		return &Failure{ReservationID: id, Code: errorCode(err), Message: fmt.Sprintf("modify capacity reservation: %v", err)}
	}
	if !aws.ToBool(out.Return) {
		return &Failure{ReservationID: id, Code: "ReturnFalse", Message: "modify capacity reservation: EC2 returned false"}
	}
	return nil
}
