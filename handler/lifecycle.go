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

// tagChanges are the tag calls of a plan, grouped so that reservations
// getting the same change share a call: deletes maps the keys to delete
// (joined by newlines) to the reservations, creates a rendered tag set to
// the reservations, and tags the rendered tag set to the tags. A signed
// mark names its reservation, so each mark is a call of its own.
type tagChanges struct {
	deletes map[string][]string
	creates map[string][]string
	tags    map[string]map[string]string
}

// planTagChanges groups the plan's marks and unmarks (pure: no call). An
// unmark deletes the mark keys the reservation carries, in whatever case
// they are written, no other; a mark writes its signed tags (signed, by
// reservation; one missing is not written) and deletes the other action's
// keys the reservation carries (an oversized one now idle loses its shrink
// mark), and the keys of its own kind written in another case.
func planTagChanges(plan policy.Plan, decisions []policy.Decision, reservations map[string]policy.Reservation, signed map[string]map[string]string) tagChanges {
	byID := make(map[string]policy.Decision, len(decisions))
	for _, d := range decisions {
		byID[d.ReservationID] = d
	}
	c := tagChanges{deletes: map[string][]string{}, creates: map[string][]string{}, tags: map[string]map[string]string{}}
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
			c.deletes[k] = append(c.deletes[k], id)
		}
	}
	for _, id := range plan.Unmark {
		del(id, present(id, lifecycleKeys, false))
	}
	for _, id := range plan.Mark {
		d := byID[id]
		tags, ok := signed[id]
		if d.Mark == nil || !ok {
			continue
		}
		own, stale := cancelMarkKeys, shrinkMarkKeys
		if d.Resize != nil {
			own, stale = shrinkMarkKeys, cancelMarkKeys
		}
		del(id, slices.Concat(present(id, stale, false), present(id, own, true)))
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
	var signed map[string]map[string]string
	if r.signer != nil && len(plan.Mark) > 0 {
		byID := make(map[string]policy.Decision, len(decisions))
		for _, d := range decisions {
			byID[d.ReservationID] = d
		}
		signed = r.signMarks(ctx, plan, byID, rep)
	}
	changes := planTagChanges(plan, decisions, r.reservations, signed)
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
		r.tagBatches(ctx, "mark", creates[rendered], rep, func(ids []string) error {
			return r.createTags(ctx, ids, tagsOf[rendered])
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

// createTags writes tags on the reservations ids.
func (r *run) createTags(ctx context.Context, ids []string, tags map[string]string) error {
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
