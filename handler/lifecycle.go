package handler

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// maxTagResources bounds the reservations one CreateTags or DeleteTags call
// names.
const maxTagResources = 1000

// lifecycleKeys are every tag key the function writes: the cancel's mark
// and the shrink's mark.
var lifecycleKeys = []string{policy.TagIdleSince, policy.TagCancelAfter, policy.TagRightsizeTo, policy.TagRightsizeSince, policy.TagRightsizeAfter}

// applyMarks writes the plan's marks and removes those of reservations no
// longer idle or oversized: the reservations sharing the same tags are
// written in one CreateTags call (every mark of a run has the same dates),
// the unmarks in one DeleteTags call, in batches of maxTagResources. A
// reservation marked for one action that carries the other's mark (an
// oversized one now idle, say) loses the stale mark first. A failed call is
// reported per reservation; it changes no decision.
func (r *run) applyMarks(ctx context.Context, plan policy.Plan, decisions []policy.Decision, rep *report.Report) {
	byID := make(map[string]policy.Decision, len(decisions))
	for _, d := range decisions {
		byID[d.ReservationID] = d
	}
	deletes := map[string][]string{} // keys (joined) -> reservations
	creates := map[string][]string{} // tags (rendered) -> reservations
	tagsOf := map[string]map[string]string{}
	present := func(id string, keys []string) []string {
		var out []string
		for _, k := range keys {
			if _, ok := r.reservations[id].Tags[k]; ok {
				out = append(out, k)
			}
		}
		return out
	}
	// An unmark deletes the mark keys the reservation carries, no other.
	for _, id := range plan.Unmark {
		if keys := present(id, lifecycleKeys); len(keys) > 0 {
			k := strings.Join(keys, "\n")
			deletes[k] = append(deletes[k], id)
		}
	}
	for _, id := range plan.Mark {
		d := byID[id]
		if d.Mark == nil {
			continue
		}
		// The mark to write, and the other action's keys, stale if present.
		tags, other := d.Mark.Tags(), lifecycleKeys[2:]
		if d.Resize != nil {
			tags, other = policy.RightsizeTags(*d.Mark, d.Resize.Target), lifecycleKeys[:2]
		}
		if stale := present(id, other); len(stale) > 0 {
			k := strings.Join(stale, "\n")
			deletes[k] = append(deletes[k], id)
		}
		rendered := renderTags(tags)
		creates[rendered] = append(creates[rendered], id)
		tagsOf[rendered] = tags
	}

	unmarked := map[string]bool{}
	for _, keys := range slices.Sorted(maps.Keys(deletes)) {
		var del []types.Tag
		for _, k := range strings.Split(keys, "\n") {
			del = append(del, types.Tag{Key: aws.String(k)}) // no value: whatever the value
		}
		r.tagBatches(ctx, "unmark", deletes[keys], rep, func(ids []string) error {
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
	for _, rendered := range slices.Sorted(maps.Keys(creates)) {
		var tags []types.Tag
		for _, k := range slices.Sorted(maps.Keys(tagsOf[rendered])) {
			tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(tagsOf[rendered][k])})
		}
		r.tagBatches(ctx, "mark", creates[rendered], rep, func(ids []string) error {
			r.calls.Add("CreateTags")
			if _, err := r.c.EC2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: tags}); err != nil {
				return fmt.Errorf("create tags: %w", err)
			}
			return nil
		}, func(id string) {
			rep.Marked = append(rep.Marked, id)
			r.audit.Info("marked", zap.String("reservation_id", id), zap.Any("tags", tagsOf[rendered]))
		})
	}
	// Marks are reported in the plan's order.
	slices.SortStableFunc(rep.Marked, func(a, b string) int {
		return slices.Index(plan.Mark, a) - slices.Index(plan.Mark, b)
	})
}

// renderTags is a stable text of a tag set, to group the reservations that
// get the same tags.
func renderTags(tags map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		b.WriteString(k + "=" + tags[k] + "\n")
	}
	return b.String()
}

// tagBatches runs call on ids in batches; done is called per reservation
// of a batch that succeeded, and a failed batch is reported per reservation.
func (r *run) tagBatches(ctx context.Context, action string, ids []string, rep *report.Report, call func([]string) error, done func(string)) {
	for start := 0; start < len(ids); start += maxTagResources {
		batch := ids[start:min(start+maxTagResources, len(ids))]
		if err := call(batch); err != nil {
			code := awsapi.ErrorCode(err)
			for _, id := range batch {
				rep.TagFailures = append(rep.TagFailures, report.Failure{ReservationID: id, Code: code, Message: action + ": " + err.Error()})
			}
			r.audit.Error(action+" failed", zap.Strings("reservation_ids", batch), zap.String("code", code), zap.Error(err))
			continue
		}
		for _, id := range batch {
			done(id)
		}
	}
}
