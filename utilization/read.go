// Package utilization reads how much of each capacity reservation was used
// over the lookback window, from CloudWatch's AWS/EC2CapacityReservations
// UsedInstanceCount, within GetMetricData's limits (500 queries and 100,800
// datapoints a call) and its rate quotas (requests and datapoints a
// second, paced by a Pacer). A run reads twice: every reservation hourly,
// then at 5 minutes only those it may act on (policy.NeedsFineRead); the
// policy acts on 5-minute data alone. A read that fails, or that the
// invocation's time does not allow, leaves its reservations without
// utilization: kept, never idle.
package utilization

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
	maxQueriesPerCall    = 500
	maxDatapointsPerCall = 100800
	// PublishingInterval is the period the metrics are published at.
	PublishingInterval = 5 * time.Minute
	// ScreenPeriod is the period of the first, coarse read.
	ScreenPeriod = time.Hour
)

// Window is the lookback window the utilization is read over, at Period:
// one datapoint present is one bucket with data, so coverage is counted,
// never taken from SampleCount (whose meaning for these metrics is
// undocumented).
type Window struct {
	Start, End time.Time
	Period     time.Duration
}

// NewWindow ends at the last 5-minute boundary (CloudWatch's own
// publishing grid) and reaches back lookbackHours, at 5 minutes.
func NewWindow(now time.Time, lookbackHours int) Window {
	end := now.UTC().Truncate(PublishingInterval)
	return Window{
		Start:  end.Add(-time.Duration(lookbackHours) * time.Hour),
		End:    end,
		Period: PublishingInterval,
	}
}

// Screen is the same window read hourly. Its buckets start at Start, as
// the 5-minute ones do, and the lookback is whole hours: each hourly
// Maximum is the maximum of twelve 5-minute maxima, so the hourly peak is
// exactly the 5-minute peak. Its coverage is not: an hour with a single
// 5-minute point is an hour with data.
func (w Window) Screen() Window {
	w.Period = ScreenPeriod
	return w
}

// Buckets is how many datapoints a full window holds.
func (w Window) Buckets() int { return int(w.End.Sub(w.Start) / w.Period) }

// reservationsPerCall is how many reservations one GetMetricData call can
// measure within both the query and the datapoint limits: one query each,
// one datapoint per bucket (50 at a 168-hour lookback at 5 minutes, 500
// hourly).
func (w Window) reservationsPerCall() int {
	return max(1, min(maxQueriesPerCall, maxDatapointsPerCall/max(1, w.Buckets())))
}

// Reader reads utilization. Its fields are set by the run.
type Reader struct {
	API   awsapi.CloudWatch
	Calls *awsapi.Calls
	// Pacer spaces the calls under the quotas; nil does not pace (and
	// cannot tell what fits in the time left).
	Pacer *Pacer
	// Concurrency bounds the calls in flight; PerCall, when positive,
	// lowers the reservations per call below what the limits allow (1 gives
	// the naive one-call-per-reservation baseline the benchmarks compare
	// against).
	Concurrency, PerCall int
}

// Result is what one read produced: a utilization for every reservation
// CloudWatch answered for, those left unread for lack of time, and the
// problems met on the way.
type Result struct {
	Usage     map[string]policy.Utilization
	OutOfTime []string
	Problems  []string
	Messages  []string
	// Datapoints counts the values CloudWatch returned.
	Datapoints int64
}

// Estimate is how long reading n reservations over w takes at the paced
// rates, and the datapoints it returns at most.
func (rd *Reader) Estimate(n int, w Window) (time.Duration, int64) {
	size := rd.batchSize(w)
	calls := (n + size - 1) / size
	points := int64(n) * int64(w.Buckets())
	return rd.Pacer.Estimate(w.Start, calls, int(points)), points
}

func (rd *Reader) batchSize(w Window) int {
	size := w.reservationsPerCall()
	if rd.PerCall > 0 {
		size = min(size, rd.PerCall)
	}
	return size
}

// Read reads the utilization of ids over w, in batches taken in the order
// of ids and run concurrently under a bound. A batch that would not end by
// until at the paced rate is not started: its reservations, and all after
// it, are left OutOfTime (a zero until has no limit). A failed batch leaves
// its reservations without utilization (so they are kept with
// insufficient-data); it does not stop the others. done, when set, is told
// how many reservations are read so far (read or failed), after each batch.
func (rd *Reader) Read(ctx context.Context, ids []string, w Window, until time.Time, done func(int)) Result {
	m := Result{Usage: make(map[string]policy.Utilization, len(ids))}
	size := rd.batchSize(w)
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		sem      = make(chan struct{}, max(1, rd.Concurrency))
		measured int
	)
	// The time budget: batch k ends, at the paced rate, when everything
	// booked before this read and batches 0..k are paid for.
	var begin time.Time
	if rd.Pacer != nil {
		begin = rd.Pacer.now().Add(rd.Pacer.booked())
	}
	for start := 0; start < len(ids); start += size {
		end := min(start+size, len(ids))
		batch := ids[start:end]
		if !until.IsZero() && rd.Pacer != nil {
			calls := (end + size - 1) / size
			if begin.Add(rd.Pacer.cost(w.Start, calls, end*w.Buckets())).After(until) {
				m.OutOfTime = append(m.OutOfTime, ids[start:]...)
				break
			}
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			usage, points, messages, err := rd.readBatch(ctx, batch, w)
			mu.Lock()
			defer mu.Unlock()
			measured += len(batch)
			m.Datapoints += points
			if done != nil {
				done(measured)
			}
			m.Messages = append(m.Messages, messages...)
			if err != nil {
				m.Problems = append(m.Problems, fmt.Sprintf("%d reservations from %s not measured: %v", len(batch), batch[0], err))
				return
			}
			for id, u := range usage {
				m.Usage[id] = u
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

func (rd *Reader) readBatch(ctx context.Context, ids []string, w Window) (map[string]policy.Utilization, int64, []string, error) {
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
	var (
		messages []string
		points   int64
	)
	// Each page is booked with the datapoints it may return: what the
	// batch still has to return, up to a call's limit.
	expected := int64(len(ids)) * int64(w.Buckets())
	pages := cloudwatch.NewGetMetricDataPaginator(rd.API, in)
	for pages.HasMorePages() {
		if err := rd.Pacer.Wait(ctx, w.Start, int(min(max(expected-points, 1), maxDatapointsPerCall))); err != nil {
			return nil, points, messages, fmt.Errorf("get metric data: %w", err)
		}
		rd.Calls.Add("GetMetricData")
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, points, messages, fmt.Errorf("get metric data: %w", err)
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
			points += int64(len(r.Values))
			for _, msg := range r.Messages {
				messages = append(messages, id+": "+aws.ToString(msg.Code)+": "+aws.ToString(msg.Value))
			}
		}
	}

	usage := make(map[string]policy.Utilization, len(ids))
	for i, id := range ids {
		u := results[queryID(i)].utilization(w.Buckets())
		u.Period = w.Period
		usage[id] = u
	}
	return usage, points, messages, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Query ids must match ^[a-z][a-zA-Z0-9_]*$ and be unique within a call.
func queryID(i int) string { return "u" + strconv.Itoa(i) }
