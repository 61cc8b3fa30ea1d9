package handler

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// Safety III, item 5: at 50,000 reservations the audit lines that list ids
// (plan, run finished) stay under CloudWatch Logs' 256 KB event limit, and
// every id is written: a long list goes to lines of its own, in parts.
func TestAuditLinesStayUnderTheEventLimitAt50000Reservations(t *testing.T) {
	const n = 50000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("cr-%017x", i)
	}
	var buf bytes.Buffer
	logger, err := NewLogger("error", zapcore.AddSync(&buf))
	if err != nil {
		t.Fatal(err)
	}
	r := &run{audit: logger.Named(AuditLogger), calls: &awsapi.Calls{}, now: time.Now, region: "us-east-1"}
	plan := policy.Plan{Mark: ids, Unmark: ids[:n/2], Cancel: ids[:1000]}
	r.logPlan(plan)
	var tagFailures []report.Failure
	for _, id := range ids {
		tagFailures = append(tagFailures, report.Failure{ReservationID: id, Code: "RequestLimitExceeded",
			Message: "mark: create tags: operation error EC2: CreateTags, exceeded maximum number of attempts, 12, https response error StatusCode: 503, RequestID: 7f3c, api error RequestLimitExceeded: Request limit exceeded."})
	}
	rep := &report.Report{Marked: ids, TagFailures: tagFailures, Cancelled: ids[:1000], Problems: []string{"a problem"}}
	if _, err := r.finish(rep, plan, nil, ""); err == nil {
		t.Fatal("a run with tag failures did not fail")
	}

	seen := map[string][]string{} // list -> ids, from every line
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	lines := 0
	for sc.Scan() {
		lines++
		line := sc.Bytes()
		if len(line) > 256<<10 {
			t.Errorf("a line of %d bytes, over 256 KB: %.200s", len(line), line)
		}
		var l map[string]any
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatalf("line %d is not JSON: %v", lines, err)
		}
		msg, _ := l["msg"].(string)
		for _, key := range []string{"mark_ids", "unmark_ids", "cancel_ids", "marked", "tag_failures", "cancelled"} {
			list, ok := l[key].([]any)
			if !ok {
				continue
			}
			for _, v := range list {
				switch v := v.(type) {
				case string:
					seen[msg+"/"+key] = append(seen[msg+"/"+key], v)
				case map[string]any:
					seen[msg+"/"+key] = append(seen[msg+"/"+key], v["reservationId"].(string))
				}
			}
		}
	}
	for key, want := range map[string][]string{
		"plan (list part)/mark_ids":                           ids,
		"plan (list part)/unmark_ids":                         ids[:n/2],
		"plan (list part)/cancel_ids":                         ids[:1000],
		"run finished with failures (list part)/marked":       ids,
		"run finished with failures (list part)/tag_failures": ids,
		"run finished with failures (list part)/cancelled":    ids[:1000],
	} {
		if got := seen[key]; !slices.Equal(got, want) {
			t.Errorf("%s: %d ids written, want all %d in order", key, len(got), len(want))
		}
	}
}
