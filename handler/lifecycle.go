package handler

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// TagWriter is the part of EC2 that writes the lifecycle's marks.
type TagWriter interface {
	CreateTags(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	DeleteTags(context.Context, *ec2.DeleteTagsInput, ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error)
}

// maxTagResources bounds the reservations one CreateTags or DeleteTags call
// names.
const maxTagResources = 1000

// applyMarks writes the plan's marks and removes the marks of reservations
// no longer idle: one CreateTags call for all the reservations sharing a
// mark (every mark of a run is written with the same values), one
// DeleteTags call for all the unmarks, in batches of maxTagResources. A
// failed call is reported per reservation; it changes no decision.
func (r *run) applyMarks(ctx context.Context, plan policy.Plan, decisions []policy.Decision, report *Report) {
	byID := make(map[string]policy.Decision, len(plan.Mark))
	for _, d := range decisions {
		if d.Action == policy.Mark {
			byID[d.ReservationID] = d
		}
	}
	// Group the marks by their tag values.
	groups := map[policy.IdleMark][]string{}
	for _, id := range plan.Mark {
		if d, ok := byID[id]; ok && d.Mark != nil {
			groups[*d.Mark] = append(groups[*d.Mark], id)
		}
	}
	keys := slices.SortedFunc(maps.Keys(groups), func(a, b policy.IdleMark) int { return a.IdleSince.Compare(b.IdleSince) })
	for _, m := range keys {
		tags := make([]types.Tag, 0, 2)
		for _, k := range []string{policy.TagIdleSince, policy.TagCancelAfter} {
			tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(m.Tags()[k])})
		}
		r.tagBatches(ctx, "mark", groups[m], report, func(ids []string) error {
			r.calls.add("CreateTags")
			_, err := r.h.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: tags})
			if err != nil {
				return fmt.Errorf("create tags: %w", err)
			}
			return nil
		}, func(id string) {
			report.Marked = append(report.Marked, id)
			r.audit.Info("marked", zap.String("reservation_id", id),
				zap.Time("idle_since", m.IdleSince), zap.Time("cancel_after", m.CancelAfter))
		})
	}
	if len(plan.Unmark) > 0 {
		// Keys without values: whatever the values, the mark goes.
		tags := []types.Tag{{Key: aws.String(policy.TagIdleSince)}, {Key: aws.String(policy.TagCancelAfter)}}
		r.tagBatches(ctx, "unmark", plan.Unmark, report, func(ids []string) error {
			r.calls.add("DeleteTags")
			_, err := r.h.EC2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: ids, Tags: tags})
			if err != nil {
				return fmt.Errorf("delete tags: %w", err)
			}
			return nil
		}, func(id string) {
			report.Unmarked = append(report.Unmarked, id)
			r.audit.Info("unmarked", zap.String("reservation_id", id))
		})
	}
}

// tagBatches runs call on ids in batches; done is called per reservation
// of a batch that succeeded, and a failed batch is reported per reservation.
func (r *run) tagBatches(ctx context.Context, action string, ids []string, report *Report, call func([]string) error, done func(string)) {
	for start := 0; start < len(ids); start += maxTagResources {
		batch := ids[start:min(start+maxTagResources, len(ids))]
		if err := call(batch); err != nil {
			code := errorCode(err)
			for _, id := range batch {
				report.TagFailures = append(report.TagFailures, Failure{ReservationID: id, Code: code, Message: action + ": " + err.Error()})
			}
			r.audit.Error(action+" failed", zap.Strings("reservation_ids", batch), zap.String("code", code), zap.Error(err))
			continue
		}
		for _, id := range batch {
			done(id)
		}
	}
}
