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

// The tag keys the function writes: the cancel's mark, the shrink's mark,
// and both.
var (
	cancelMarkKeys = []string{policy.TagIdleSince, policy.TagCancelAfter}
	shrinkMarkKeys = []string{policy.TagRightsizeTo, policy.TagRightsizeSince, policy.TagRightsizeAfter}
	lifecycleKeys  = slices.Concat(cancelMarkKeys, shrinkMarkKeys)
)

// tagChanges are the tag calls of a plan, grouped so that reservations
// getting the same change share a call: deletes maps the keys to delete
// (joined by newlines) to the reservations, creates a rendered tag set to
// the reservations, and tags the rendered tag set to the tags.
type tagChanges struct {
	deletes map[string][]string
	creates map[string][]string
	tags    map[string]map[string]string
}

// planTagChanges groups the plan's marks and unmarks (pure: no call). An
// unmark deletes the mark keys the reservation carries, no other; a mark
// writes its tags and deletes the other action's keys the reservation
// carries (an oversized one now idle loses its shrink mark).
func planTagChanges(plan policy.Plan, decisions []policy.Decision, reservations map[string]policy.Reservation) tagChanges {
	byID := make(map[string]policy.Decision, len(decisions))
	for _, d := range decisions {
		byID[d.ReservationID] = d
	}
	c := tagChanges{deletes: map[string][]string{}, creates: map[string][]string{}, tags: map[string]map[string]string{}}
	present := func(id string, keys []string) []string {
		var out []string
		for _, k := range keys {
			if _, ok := reservations[id].Tags[k]; ok {
				out = append(out, k)
			}
		}
		return out
	}
	for _, id := range plan.Unmark {
		if keys := present(id, lifecycleKeys); len(keys) > 0 {
			k := strings.Join(keys, "\n")
			c.deletes[k] = append(c.deletes[k], id)
		}
	}
	for _, id := range plan.Mark {
		d := byID[id]
		if d.Mark == nil {
			continue
		}
		tags, stale := d.Mark.Tags(), shrinkMarkKeys
		if d.Resize != nil {
			tags, stale = policy.RightsizeTags(*d.Mark, d.Resize.Target), cancelMarkKeys
		}
		if keys := present(id, stale); len(keys) > 0 {
			k := strings.Join(keys, "\n")
			c.deletes[k] = append(c.deletes[k], id)
		}
		rendered := renderTags(tags)
		c.creates[rendered] = append(c.creates[rendered], id)
		c.tags[rendered] = tags
	}
	return c
}

// applyMarks writes the plan's marks and removes those of reservations no
// longer idle or oversized: the reservations sharing the same tags are
// written in one CreateTags call (every mark of a run has the same dates),
// the unmarks in one DeleteTags call, in batches of maxTagResources. A
// reservation marked for one action that carries the other's mark (an
// oversized one now idle, say) loses the stale mark first. A failed call is
// reported per reservation; it changes no decision.
func (r *run) applyMarks(ctx context.Context, plan policy.Plan, decisions []policy.Decision, rep *report.Report) {
	changes := planTagChanges(plan, decisions, r.reservations)
	deletes, creates, tagsOf := changes.deletes, changes.creates, changes.tags

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
