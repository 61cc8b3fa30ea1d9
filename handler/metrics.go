package handler

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// CloudWatch facts and limits for AWS/EC2CapacityReservations.
const (
	metricNamespace      = "AWS/EC2CapacityReservations"
	metricName           = "UsedInstanceCount"
	metricDimension      = "CapacityReservationId"
	publishingInterval   = 5 * time.Minute
	maxQueriesPerCall    = 500
	maxDatapointsPerCall = 100800
)

// window is the lookback window the utilization is read over, at the
// 5-minute period the metrics are published at: one datapoint per bucket
// present is one bucket with data, so coverage is counted, never taken from
// SampleCount (whose meaning for these metrics is undocumented).
type window struct {
	Start, End time.Time
	Period     time.Duration
}

// metricWindow ends at the last 5-minute boundary (CloudWatch's own
// publishing grid) and reaches back lookbackHours.
func metricWindow(now time.Time, lookbackHours int) window {
	end := now.UTC().Truncate(publishingInterval)
	return window{
		Start:  end.Add(-time.Duration(lookbackHours) * time.Hour),
		End:    end,
		Period: publishingInterval,
	}
}

func (w window) buckets() int { return int(w.End.Sub(w.Start) / w.Period) }

// reservationsPerCall is how many reservations one GetMetricData call can
// measure within both the query and the datapoint limits: one query each,
// one datapoint per bucket (50 at a 168-hour lookback).
func (w window) reservationsPerCall() int {
	return max(1, min(maxQueriesPerCall, maxDatapointsPerCall/max(1, w.buckets())))
}

// measurement is what reading the metrics produced: a utilization for every
// reservation CloudWatch answered for, and the problems met on the way.
type measurement struct {
	usage    map[string]policy.Utilization
	problems []string
	messages []string
}

// measure reads the utilization of ids over w, in batches that run
// concurrently under a bound. A failed batch leaves its reservations without
// utilization (so they are kept with insufficient-data); it does not stop the
// others.
// perCall, when positive, lowers the reservations per call below what the
// limits allow (1 gives the naive one-call-per-reservation baseline the
// benchmarks compare against).
// done, when set, is told how many reservations are measured so far (read
// or failed), after each batch.
func measure(ctx context.Context, api awsapi.CloudWatch, calls *awsapi.Calls, ids []string, w window, concurrency, perCall int, done func(int)) measurement {
	m := measurement{usage: make(map[string]policy.Utilization, len(ids))}
	size := w.reservationsPerCall()
	if perCall > 0 {
		size = min(size, perCall)
	}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		sem      = make(chan struct{}, max(1, concurrency))
		measured int
	)
	for start := 0; start < len(ids); start += size {
		batch := ids[start:min(start+size, len(ids))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			usage, messages, err := measureBatch(ctx, api, calls, batch, w)
			mu.Lock()
			defer mu.Unlock()
			measured += len(batch)
			if done != nil {
				done(measured)
			}
			m.messages = append(m.messages, messages...)
			if err != nil {
				m.problems = append(m.problems, fmt.Sprintf("%d reservations from %s not measured: %v", len(batch), batch[0], err))
				return
			}
			for id, u := range usage {
				m.usage[id] = u
			}
		}()
	}
	wg.Wait()
	return m
}

// series accumulates one query's results across pages, keeping the peak and
// the count, not the values: a batch holds up to 100,800 of them.
type series struct {
	count int
	peak  float64
	// status is the StatusCode of the last page that mentioned the query;
	// failed sticks once any page said InternalError or Forbidden, whatever
	// later pages say; corrupt is set by a page whose timestamps and values
	// disagree, or a value that is not a number.
	status  cwtypes.StatusCode
	failed  bool
	corrupt bool
}

func (s *series) add(r cwtypes.MetricDataResult) {
	s.status = r.StatusCode
	switch r.StatusCode {
	case cwtypes.StatusCodeInternalError, cwtypes.StatusCodeForbidden:
		s.failed = true
	}
	if len(r.Timestamps) != len(r.Values) {
		s.corrupt = true
	}
	for _, v := range r.Values {
		if !finite(v) {
			s.corrupt = true
		}
		if s.count == 0 || v > s.peak {
			s.peak = v
		}
		s.count++
	}
}

// utilization turns the series into what the policy weighs. More values than
// buckets in the window is not a measurement either.
func (s *series) utilization(buckets int) policy.Utilization {
	if s == nil || s.failed || s.corrupt || s.status != cwtypes.StatusCodeComplete || s.count > buckets {
		return policy.Utilization{Complete: false}
	}
	return policy.Utilization{Complete: true, PeakUsed: s.peak, Datapoints: s.count}
}

func measureBatch(ctx context.Context, api awsapi.CloudWatch, calls *awsapi.Calls, ids []string, w window) (map[string]policy.Utilization, []string, error) {
	period := int32(w.Period / time.Second)
	queries := make([]cwtypes.MetricDataQuery, len(ids))
	for i, id := range ids {
		queries[i] = cwtypes.MetricDataQuery{
			Id: aws.String(queryID(i)),
			MetricStat: &cwtypes.MetricStat{
				Metric: &cwtypes.Metric{
					Namespace:  aws.String(metricNamespace),
					MetricName: aws.String(metricName),
					Dimensions: []cwtypes.Dimension{{Name: aws.String(metricDimension), Value: aws.String(id)}},
				},
				Period: aws.Int32(period),
				Stat:   aws.String("Maximum"),
				Unit:   cwtypes.StandardUnitCount,
			},
		}
	}
	in := &cloudwatch.GetMetricDataInput{
		StartTime:         aws.Time(w.Start),
		EndTime:           aws.Time(w.End),
		MetricDataQueries: queries,
		ScanBy:            cwtypes.ScanByTimestampAscending,
	}
	results := make(map[string]*series, len(queries))
	var messages []string
	pages := cloudwatch.NewGetMetricDataPaginator(api, in)
	for pages.HasMorePages() {
		calls.Add("GetMetricData")
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, messages, fmt.Errorf("get metric data: %w", err)
		}
		for _, msg := range page.Messages {
			messages = append(messages, aws.ToString(msg.Code)+": "+aws.ToString(msg.Value))
		}
		for _, r := range page.MetricDataResults {
			id := aws.ToString(r.Id)
			s := results[id]
			if s == nil {
				s = &series{}
				results[id] = s
			}
			s.add(r)
			for _, msg := range r.Messages {
				messages = append(messages, id+": "+aws.ToString(msg.Code)+": "+aws.ToString(msg.Value))
			}
		}
	}

	usage := make(map[string]policy.Utilization, len(ids))
	for i, id := range ids {
		usage[id] = results[queryID(i)].utilization(w.buckets())
	}
	return usage, messages, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Query ids must match ^[a-z][a-zA-Z0-9_]*$ and be unique within a call.
func queryID(i int) string { return "u" + strconv.Itoa(i) }
