package handler

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// CloudWatch facts and limits for AWS/EC2CapacityReservations.
const (
	metricNamespace      = "AWS/EC2CapacityReservations"
	metricName           = "InstanceUtilization"
	metricDimension      = "CapacityReservationId"
	publishingInterval   = 5 * time.Minute
	maxQueriesPerCall    = 500
	maxDatapointsPerCall = 100800
	// queriesPerReservation: the peak (Maximum) and the number of
	// datapoints present (SampleCount).
	queriesPerReservation = 2
	// maxPeriodHours keeps a bucket within one day; larger buckets would
	// save nothing, since one call already holds 250 reservations.
	maxPeriodHours = 24
)

// window is the lookback window the utilization is read over.
type window struct {
	Start, End time.Time
	Period     time.Duration
}

// metricWindow ends at the last 5-minute boundary (CloudWatch's own
// publishing grid) and is cut into equal buckets of whole hours, at most a
// day, so a query returns few datapoints and a call holds many reservations.
// The period divides the window exactly so no bucket is partial.
func metricWindow(now time.Time, lookbackHours int) window {
	end := now.UTC().Truncate(publishingInterval)
	period := 1
	for p := min(lookbackHours, maxPeriodHours); p >= 1; p-- {
		if lookbackHours%p == 0 {
			period = p
			break
		}
	}
	return window{
		Start:  end.Add(-time.Duration(lookbackHours) * time.Hour),
		End:    end,
		Period: time.Duration(period) * time.Hour,
	}
}

func (w window) buckets() int { return int(w.End.Sub(w.Start) / w.Period) }

// reservationsPerCall is how many reservations one GetMetricData call can
// measure within both the query and the datapoint limits.
func (w window) reservationsPerCall() int {
	byQueries := maxQueriesPerCall / queriesPerReservation
	byDatapoints := maxDatapointsPerCall / (queriesPerReservation * w.buckets())
	return max(1, min(byQueries, byDatapoints))
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
func measure(ctx context.Context, api CloudWatchAPI, calls *callCounter, ids []string, w window, concurrency, perCall int) measurement {
	m := measurement{usage: make(map[string]policy.Utilization, len(ids))}
	size := w.reservationsPerCall()
	if perCall > 0 {
		size = min(size, perCall)
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, max(1, concurrency))
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

// seriesResult accumulates one query's results across pages.
type seriesResult struct {
	values []float64
	status cwtypes.StatusCode
}

func measureBatch(ctx context.Context, api CloudWatchAPI, calls *callCounter, ids []string, w window) (map[string]policy.Utilization, []string, error) {
	period := int32(w.Period / time.Second)
	queries := make([]cwtypes.MetricDataQuery, 0, len(ids)*queriesPerReservation)
	for i, id := range ids {
		metric := &cwtypes.Metric{
			Namespace:  aws.String(metricNamespace),
			MetricName: aws.String(metricName),
			Dimensions: []cwtypes.Dimension{{Name: aws.String(metricDimension), Value: aws.String(id)}},
		}
		queries = append(queries,
			cwtypes.MetricDataQuery{Id: aws.String(peakQueryID(i)), MetricStat: &cwtypes.MetricStat{Metric: metric, Period: aws.Int32(period), Stat: aws.String("Maximum")}},
			cwtypes.MetricDataQuery{Id: aws.String(countQueryID(i)), MetricStat: &cwtypes.MetricStat{Metric: metric, Period: aws.Int32(period), Stat: aws.String("SampleCount")}},
		)
	}
	in := &cloudwatch.GetMetricDataInput{
		StartTime:         aws.Time(w.Start),
		EndTime:           aws.Time(w.End),
		MetricDataQueries: queries,
		ScanBy:            cwtypes.ScanByTimestampAscending,
	}
	results := make(map[string]*seriesResult, len(queries))
	var messages []string
	pages := cloudwatch.NewGetMetricDataPaginator(api, in)
	for pages.HasMorePages() {
		calls.add("GetMetricData")
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
				s = &seriesResult{}
				results[id] = s
			}
			// The last page that mentions a query carries its final status.
			s.status = r.StatusCode
			s.values = append(s.values, r.Values...)
			for _, msg := range r.Messages {
				messages = append(messages, id+": "+aws.ToString(msg.Code)+": "+aws.ToString(msg.Value))
			}
		}
	}

	usage := make(map[string]policy.Utilization, len(ids))
	for i, id := range ids {
		peak, count := results[peakQueryID(i)], results[countQueryID(i)]
		if peak == nil || count == nil || peak.status != cwtypes.StatusCodeComplete || count.status != cwtypes.StatusCodeComplete {
			usage[id] = policy.Utilization{Complete: false}
			continue
		}
		var n float64
		for _, v := range count.values {
			n += v
		}
		// A peak without a count (or the reverse), or a value that is not a
		// number, is not a measurement.
		if (len(peak.values) == 0) != (n == 0) || !finite(n) || slices.ContainsFunc(peak.values, func(v float64) bool { return !finite(v) }) {
			usage[id] = policy.Utilization{Complete: false}
			continue
		}
		u := policy.Utilization{Complete: true, Datapoints: int(n)}
		for j, v := range peak.values {
			if j == 0 || v > u.PeakPercent {
				u.PeakPercent = v
			}
		}
		usage[id] = u
	}
	return usage, messages, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Query ids must match ^[a-z][a-zA-Z0-9_]*$ and be unique within a call.
func peakQueryID(i int) string  { return "p" + strconv.Itoa(i) }
func countQueryID(i int) string { return "n" + strconv.Itoa(i) }
