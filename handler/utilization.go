package handler

// Reading the utilization: two passes, paced, within the invocation's time.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
	"github.com/odcr-autocancel/odcr-autocancel/utilization"
)

// readUtilization reads the utilization of the reservations at the indices
// measured: first hourly, every one of them; then at 5 minutes only those
// the run may act on (policy.NeedsFineRead), the largest first. A
// reservation whose hourly peak keeps it for its use is decided on that
// read; every other decision rests on the 5-minute one. The reads stop
// short of the invocation's deadline: what they leave is kept, out of time.
func (r *run) readUtilization(ctx context.Context, reservations []policy.Reservation, decisions []policy.Decision, measured []int, rep *report.Report) map[string]policy.Utilization {
	ids := make([]string, len(measured))
	for k, i := range measured {
		ids[k] = reservations[i].ID
	}
	// The reads must end when every AWS call of the run ends: ctx's
	// deadline (withinMargin). A read planned past it would be cut anyway,
	// and leave its reservations unmeasured without saying why.
	until, _ := ctx.Deadline()
	screen := r.window.Screen()
	screenTime, screenPoints := r.reader.Estimate(len(ids), screen)
	fineTime, finePoints := r.reader.Estimate(len(ids), r.window)
	fields := []zap.Field{
		zap.Int("reservations", len(ids)),
		zap.Int64("hourly_datapoints", screenPoints), zap.Duration("hourly_read", screenTime.Round(time.Millisecond)),
		zap.Int64("five_minute_datapoints_at_most", finePoints), zap.Duration("five_minute_read_at_most", fineTime.Round(time.Millisecond)),
	}
	msg, level := "reading utilization", zap.InfoLevel
	if !until.IsZero() {
		left := time.Until(until)
		fields = append(fields, zap.Duration("time_for_reads", left.Round(time.Millisecond)))
		if screenTime > left {
			msg, level = "reading utilization: the hourly read alone does not fit in the invocation's time at CloudWatch's quota; reading what fits, the rest is kept, out of time", zap.WarnLevel
		}
	}
	r.log.Log(level, msg, fields...)

	first := r.reader.Read(ctx, ids, screen, until, func(n int) { r.progress("screened", n, len(ids)) })
	// What the hourly read failed on is read again at 5 minutes: its
	// failures are not the run's problems unless that read fails too.
	if len(first.Problems) > 0 {
		r.log.Warn("hourly read failed for some reservations; reading them at 5 minutes", zap.Strings("problems", first.Problems))
	}
	first.Problems = nil
	r.absorb(first, rep)
	read := first.Usage

	// The second pass: what the hourly read could not settle, largest
	// reservations first so that what fits in the time counts most.
	var fine []int
	for _, i := range measured {
		id := reservations[i].ID
		var coarse *policy.Utilization
		if u, ok := first.Usage[id]; ok {
			coarse = &u
		}
		if policy.NeedsFineRead(r.policy, decisions[i], reservations[i], coarse, r.started) {
			fine = append(fine, i)
			delete(read, id) // decided on the 5-minute read alone
		}
	}
	slices.SortStableFunc(fine, func(a, b int) int {
		return cmp.Compare(reservations[b].Total, reservations[a].Total)
	})
	fineIDs := make([]string, len(fine))
	for k, i := range fine {
		fineIDs[k] = reservations[i].ID
	}
	second := r.reader.Read(ctx, fineIDs, r.window, until, func(n int) { r.progress("measured", n, len(fineIDs)) })
	r.absorb(second, rep)
	for id, u := range second.Usage {
		read[id] = u
	}
	for _, id := range second.OutOfTime {
		read[id] = policy.Utilization{OutOfTime: true}
	}
	r.outOfTime = len(second.OutOfTime)
	total := first.Datapoints + second.Datapoints
	r.log.Info("utilization read",
		zap.Int("hourly", len(ids)-len(first.OutOfTime)),
		zap.Int("kept_on_hourly_peak", len(ids)-len(fine)),
		zap.Int("five_minute", len(fineIDs)-len(second.OutOfTime)),
		zap.Int("out_of_time", len(second.OutOfTime)),
		zap.Int64("datapoints", total))
	if len(second.OutOfTime) > 0 {
		rep.Problems = append(rep.Problems, outOfTimeProblem(len(second.OutOfTime)))
		r.audit.Warn("reservations not measured: the invocation's time ran out; kept", zap.Int("count", len(second.OutOfTime)))
	}
	return read
}

// absorb files a read's problems in the report and logs CloudWatch's
// messages.
func (r *run) absorb(res utilization.Result, rep *report.Report) {
	rep.Problems = append(rep.Problems, res.Problems...)
	if len(res.Messages) > 0 {
		r.log.Warn("CloudWatch returned messages", zap.Int("count", len(res.Messages)),
			zap.Strings("messages", res.Messages[:min(len(res.Messages), 20)]))
	}
}

func outOfTimeProblem(n int) string {
	return fmt.Sprintf("%d reservations", n) + " not measured: reading them at CloudWatch's quota would not have ended within the invocation's time; kept. Raise the function's timeout (docs/performance.md gives the time per N)"
}
