// Package emf writes a run's metrics as one CloudWatch Embedded Metric
// Format (EMF) record: a line of the JSON log stream whose root object is
// the EMF document. CloudWatch Logs extracts the metrics from the
// function's log group: no PutMetricData call, no permission beyond writing
// the logs. The metrics are read from the run's report; the template's
// dashboard and alarms name them (Metrics, DimensionSets).
package emf

import (
	"os"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

const (
	// Namespace is the CloudWatch namespace of the run metrics.
	Namespace = "odcr-autocancel"
	// Message is the "msg" of the audit line that carries the record.
	Message = "metrics"

	// DimensionFunctionName tells two stacks of one account and region
	// apart: the metrics are already per account and region.
	DimensionFunctionName = "FunctionName"
	// DimensionDryRun ("true" or "false") keeps what dry runs would do
	// apart from what live runs did.
	DimensionDryRun = "DryRun"

	// MetricCancelsFailed is the metric of the "cancels failed" alarm.
	MetricCancelsFailed = "CancelsFailed"

	// localFunctionName names the function outside Lambda.
	localFunctionName = "local"
	// maxMetricsPerDirective is EMF's limit of metrics in one directive.
	maxMetricsPerDirective = 100
)

// CloudWatch units (StandardUnit) of the run metrics.
const (
	unitCount        = "Count"
	unitMilliseconds = "Milliseconds"
	// unitNone is for a figure with no CloudWatch unit, such as a cost in
	// US dollars (CloudWatch has no currency unit).
	unitNone = "None"
)

// Metric is a metric of the record: its name and CloudWatch unit.
type Metric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// runMetric is a metric and how its value is read from the report.
type runMetric struct {
	Metric
	value func(r *report.Report) float64
}

// runMetrics lists the run metrics in the record's order, one line each: a
// new figure of the report (a cost in dollars, unit None) joins with one
// line. Each is a billed custom metric per dimension value combination.
func runMetrics() []runMetric {
	return []runMetric{
		{Metric{"Reservations", unitCount}, func(r *report.Report) float64 { return float64(r.Counts.Reservations) }},
		{Metric{"IdleFound", unitCount}, func(r *report.Report) float64 { return float64(r.Counts.Idle) }},
		{Metric{"ActionCancel", unitCount}, actionCount(policy.Cancel)},
		{Metric{"ActionMark", unitCount}, actionCount(policy.Mark)},
		{Metric{"ActionUnmark", unitCount}, actionCount(policy.Unmark)},
		{Metric{"ActionModify", unitCount}, actionCount(policy.Modify)},
		{Metric{"ActionKeep", unitCount}, actionCount(policy.Keep)},
		{Metric{"Cancelled", unitCount}, func(r *report.Report) float64 { return float64(r.Counts.Cancelled) }},
		{Metric{"Shrunk", unitCount}, func(r *report.Report) float64 { return float64(r.Counts.Modified) }},
		{Metric{"Marked", unitCount}, func(r *report.Report) float64 { return float64(r.Counts.Marked) }},
		{Metric{"Unmarked", unitCount}, func(r *report.Report) float64 { return float64(r.Counts.Unmarked) }},
		{Metric{MetricCancelsFailed, unitCount}, func(r *report.Report) float64 { return float64(len(r.Failures) - shrinkFailures(r)) }},
		{Metric{"ShrinksFailed", unitCount}, func(r *report.Report) float64 { return float64(shrinkFailures(r)) }},
		{Metric{"TagChangesFailed", unitCount}, func(r *report.Report) float64 { return float64(len(r.TagFailures)) }},
		{Metric{"NotAttempted", unitCount}, func(r *report.Report) float64 { return float64(r.Counts.NotAttempted) }},
		{Metric{"Aborted", unitCount}, func(r *report.Report) float64 {
			if r.Aborted {
				return 1
			}
			return 0
		}},
		{Metric{"RunDuration", unitMilliseconds}, func(r *report.Report) float64 {
			return float64(r.FinishedAt.Sub(r.StartedAt)) / float64(time.Millisecond)
		}},
		{Metric{"APICalls", unitCount}, func(r *report.Report) float64 { return float64(totalCalls(r.APICalls)) }},
		{Metric{"Retries", unitCount}, func(r *report.Report) float64 { return float64(r.Retries) }},
		{Metric{"Problems", unitCount}, func(r *report.Report) float64 { return float64(len(r.Problems)) }},
		// USD a month at On-Demand list prices (CloudWatch has no currency
		// unit); 0 when nothing was priced.
		{Metric{"IdleMonthlyCost", unitNone}, func(r *report.Report) float64 {
			return costOf(r, func(c *report.Costs) float64 { return c.IdleMonthly })
		}},
		{Metric{"RemovedMonthlyCost", unitNone}, func(r *report.Report) float64 {
			return costOf(r, func(c *report.Costs) float64 { return c.RemovedMonthly })
		}},
	}
}

// Metrics lists the metrics the record declares, in order.
func Metrics() []Metric {
	ms := runMetrics()
	out := make([]Metric, len(ms))
	for i, m := range ms {
		out[i] = m.Metric
	}
	return out
}

// DimensionSets are the record's dimension sets. One set, of two
// dimensions: each metric is one custom metric per function and DryRun
// value published.
func DimensionSets() [][]string {
	return [][]string{{DimensionFunctionName, DimensionDryRun}}
}

// actionCount counts the final decisions of one action.
func actionCount(a policy.Action) func(*report.Report) float64 {
	return func(r *report.Report) float64 { return float64(r.Counts.Actions[a]) }
}

// shrinkFailures counts the failures of shrinks: those whose reservation's
// final decision is a modification. The others are cancels that failed
// (a failed action leaves its decision as it was).
func shrinkFailures(r *report.Report) int {
	modify := map[string]bool{}
	for _, d := range r.Decisions {
		if d.Action == policy.Modify {
			modify[d.ReservationID] = true
		}
	}
	n := 0
	for _, f := range r.Failures {
		if modify[f.ReservationID] {
			n++
		}
	}
	return n
}

// totalCalls adds up the API calls of every operation.
func totalCalls(perOperation map[string]int) int {
	n := 0
	for _, v := range perOperation {
		n += v
	}
	return n
}

// metadata is the record's "_aws" member.
type metadata struct {
	// Timestamp is in milliseconds since the epoch.
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

type directive struct {
	Namespace  string     `json:"Namespace"`
	Dimensions [][]string `json:"Dimensions"`
	Metrics    []Metric   `json:"Metrics"`
}

// Record builds the EMF document of a finished run as the fields of one
// log line, all at its root: "_aws", the dimension values (strings), every
// metric's value (a number), then properties that are not metrics, for Logs
// Insights: the account, the region, the decisions per reason and the API
// calls per operation. function is the Lambda function's name.
func Record(r *report.Report, region, function string) []zap.Field {
	metrics := runMetrics()
	meta := metadata{Timestamp: r.FinishedAt.UnixMilli()}
	for start := 0; start < len(metrics); start += maxMetricsPerDirective {
		d := directive{Namespace: Namespace, Dimensions: DimensionSets()}
		for _, m := range metrics[start:min(start+maxMetricsPerDirective, len(metrics))] {
			d.Metrics = append(d.Metrics, m.Metric)
		}
		meta.CloudWatchMetrics = append(meta.CloudWatchMetrics, d)
	}

	fields := []zap.Field{
		zap.Any("_aws", meta),
		zap.String(DimensionFunctionName, function),
		zap.String(DimensionDryRun, strconv.FormatBool(r.DryRun)),
	}
	for _, m := range metrics {
		fields = append(fields, zap.Float64(m.Name, m.value(r)))
	}
	// Every reason, zero or not, so that a query finds each field.
	reasons := make(map[string]int, len(policy.Reasons))
	for _, reason := range policy.Reasons {
		reasons[string(reason)] = 0
	}
	for reason, n := range r.Counts.Reasons {
		reasons[string(reason)] = n
	}
	return append(fields,
		zap.String("Version", r.Version),
		zap.String("AccountId", r.AccountID),
		zap.String("Region", region),
		zap.Any("Reasons", reasons),
		zap.Any("ApiCallsPerOperation", r.APICalls),
	)
}

// FunctionName is the name of the Lambda function (AWS_LAMBDA_FUNCTION_NAME,
// which Lambda sets in every runtime), or "local" outside Lambda: a
// dimension value may not be empty.
func FunctionName() string {
	if name := os.Getenv("AWS_LAMBDA_FUNCTION_NAME"); name != "" {
		return name
	}
	return localFunctionName
}

// costOf is one of the run's cost figures, 0 when nothing was priced.
func costOf(r *report.Report, f func(*report.Costs) float64) float64 {
	if r.Costs == nil {
		return 0
	}
	return f(r.Costs)
}

// The organization's record: written by the last collect of an
// organization run, with the same namespace and dimension set as a run's.
const (
	// MetricOrganizationTargetsFailed counts the targets of an organization
	// run that failed: unreachable, unreadable, or completed with failures.
	MetricOrganizationTargetsFailed = "OrganizationTargetsFailed"
)

// OrganizationFigures are an organization run's totals, as its record
// carries them.
type OrganizationFigures struct {
	Targets, Failed, EvaluatedNothing int
	// DryRun: every target that ran was a dry run.
	DryRun bool
	At     time.Time
}

// OrganizationMetrics lists the metrics of the organization's record.
func OrganizationMetrics() []Metric {
	return []Metric{
		{"OrganizationTargets", unitCount},
		{MetricOrganizationTargetsFailed, unitCount},
		{"OrganizationTargetsEvaluatedNothing", unitCount},
	}
}

// OrganizationRecord builds the EMF document of an organization run's
// totals as the fields of one log line. function is the Lambda function's
// name.
func OrganizationRecord(f OrganizationFigures, function string) []zap.Field {
	ms := OrganizationMetrics()
	meta := metadata{Timestamp: f.At.UnixMilli(), CloudWatchMetrics: []directive{{Namespace: Namespace, Dimensions: DimensionSets(), Metrics: ms}}}
	values := []int{f.Targets, f.Failed, f.EvaluatedNothing}
	fields := []zap.Field{
		zap.Any("_aws", meta),
		zap.String(DimensionFunctionName, function),
		zap.String(DimensionDryRun, strconv.FormatBool(f.DryRun)),
	}
	for i, m := range ms {
		fields = append(fields, zap.Float64(m.Name, float64(values[i])))
	}
	return fields
}
