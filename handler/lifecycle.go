package handler

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/marks"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// maxTagResources bounds the reservations one CreateTags or DeleteTags call
// names.
const maxTagResources = 1000

// The tag keys the function writes: the cancel's mark, the shrink's mark
// (each with its signature), and both.
var (
	cancelMarkKeys = marks.Idle.AllKeys()
	shrinkMarkKeys = marks.Rightsize.AllKeys()
	lifecycleKeys  = slices.Concat(cancelMarkKeys, shrinkMarkKeys)
)

// planDeletes groups the plan's tag deletions (pure: no call): the keys
// to delete, joined by newlines, to the reservations, so that reservations
// losing the same keys share a DeleteTags call. An unmark deletes the mark
// keys the reservation carries, in whatever case they are written, no
// other; a mark first deletes the other action's keys the reservation
// carries (an oversized one now idle loses its shrink mark) and its own
// kind's keys written in another case.
func planDeletes(plan policy.Plan, byID map[string]policy.Decision, reservations map[string]policy.Reservation) map[string][]string {
	deletes := map[string][]string{}
	// present lists the keys of the reservation that are one of keys
	// whatever their case; exact leaves out those written exactly so.
	present := func(id string, keys []string, exact bool) []string {
		var out []string
		for k := range reservations[id].Tags {
			for _, want := range keys {
				if strings.EqualFold(k, want) && (!exact || k != want) {
					out = append(out, k)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	del := func(id string, keys []string) {
		if len(keys) > 0 {
			k := strings.Join(keys, "\n")
			deletes[k] = append(deletes[k], id)
		}
	}
	for _, id := range plan.Unmark {
		del(id, present(id, lifecycleKeys, false))
	}
	for _, id := range plan.Mark {
		if byID[id].Mark == nil {
			continue
		}
		own, stale := cancelMarkKeys, shrinkMarkKeys
		if byID[id].Resize != nil {
			own, stale = shrinkMarkKeys, cancelMarkKeys
		}
		del(id, slices.Concat(present(id, stale, false), present(id, own, true)))
	}
	return deletes
}

// removeMarks removes the marks of reservations no longer idle or
// oversized, and the stale keys of those to mark (in DeleteTags calls of
// up to maxTagResources reservations sharing the same keys); writeMarks
// writes the new marks later. A failed call is reported per reservation;
// it changes no decision.
func (r *run) removeMarks(ctx context.Context, plan policy.Plan, byID map[string]policy.Decision, rep *report.Report) {
	deletes := planDeletes(plan, byID, r.reservations)
	unmarked := map[string]bool{}
	for _, keys := range slices.Sorted(maps.Keys(deletes)) {
		var del []types.Tag
		for _, k := range strings.Split(keys, "\n") {
			del = append(del, types.Tag{Key: aws.String(k)}) // no value: whatever the value
		}
		r.tagBatches(ctx, "unmark", deletes[keys], rep, func(ids []string) error {
			if err := r.tagWrites.Wait(ctx, r.settings.tagWriteEvery()); err != nil {
				return fmt.Errorf("delete tags: %w", err)
			}
			r.calls.Add("DeleteTags")
			if _, err := r.c.EC2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: ids, Tags: del}); err != nil {
				return fmt.Errorf("delete tags: %w", err)
			}
			return nil
		}, func(id string) {
			if slices.Contains(plan.Unmark, id) && !unmarked[id] {
				unmarked[id] = true
				rep.Unmarked = append(rep.Unmarked, id)
				r.audit.Info("unmarked", zap.String("reservation_id", id))
			}
		})
	}
}

// tagBatches runs call on ids in batches; done is called per reservation
// of a batch that succeeded, and a failed batch is reported per reservation.
func (r *run) tagBatches(ctx context.Context, action string, ids []string, rep *report.Report, call func([]string) error, done func(string)) {
	for start := 0; start < len(ids); start += maxTagResources {
		batch := ids[start:min(start+maxTagResources, len(ids))]
		if err := call(batch); err != nil {
			r.tagFailed(action, batch, err, rep)
			continue
		}
		for _, id := range batch {
			done(id)
		}
	}
}

// tagFailed reports a mark or unmark that failed, per reservation.
func (r *run) tagFailed(action string, ids []string, err error, rep *report.Report) {
	code := awsapi.ErrorCode(err)
	for _, id := range ids {
		rep.TagFailures = append(rep.TagFailures, report.Failure{ReservationID: id, Code: code, Message: action + ": " + err.Error()})
	}
	r.audit.Error(action+" failed", zap.Strings("reservation_ids", ids), zap.String("code", code), zap.Error(err))
}

// createTags writes tags on the reservations ids, at the time the caller
// booked for it (r.tagWrites).
func (r *run) createTags(ctx context.Context, at time.Time, ids []string, tags map[string]string) error {
	if err := awsapi.SleepUntil(ctx, at); err != nil {
		return fmt.Errorf("create tags: %w", err)
	}
	var t []types.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		t = append(t, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	r.calls.Add("CreateTags")
	if _, err := r.c.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: t}); err != nil {
		return fmt.Errorf("create tags: %w", err)
	}
	return nil
}
