package utilization

import (
	"context"
	"sync"
	"time"
)

// Quotas are GetMetricData's rate quotas for one account and region
// (CloudWatch service quotas; AWS Knowledge Center
// "cloudwatch-getmetricdata-api"). Above them CloudWatch answers Throttling.
type Quotas struct {
	RequestsPerSecond float64
	// DatapointsPerSecond applies to requests whose StartTime is more than
	// 3 hours ago (every lookback this function reads);
	// RecentDatapointsPerSecond to those within 3 hours.
	DatapointsPerSecond       float64
	RecentDatapointsPerSecond float64
}

// DefaultQuotas are CloudWatch's default quotas.
func DefaultQuotas() Quotas {
	return Quotas{RequestsPerSecond: 50, DatapointsPerSecond: 396_000, RecentDatapointsPerSecond: 180_000}
}

// PacePercent is the share of the quotas the reads are paced at by
// default: the quota is the account's, and other callers may use some.
const PacePercent = 90

// recentWindow is how close to now a StartTime makes a request "recent".
const recentWindow = 3 * time.Hour

// Pacer spaces GetMetricData requests so that neither the requests nor the
// datapoints returned in any second exceed the paced rates. It is a
// virtual-time scheduler without burst: a request may start when the cost
// of the previous ones has been paid back at the rate, so the cost sent
// in any second is at most the rate plus one request. The quota belongs to
// the account and region: one Pacer serves one run, and only one run reads
// an account and region at a time.
type Pacer struct {
	requests, points, recentPoints float64 // per second, paced
	now                            func() time.Time
	sleep                          func(context.Context, time.Duration) error

	mu                      sync.Mutex
	nextRequest, nextPoints time.Time
}

// NewPacer paces at percent of q. A zero rate is not paced.
func NewPacer(q Quotas, percent float64) *Pacer {
	f := percent / 100
	return &Pacer{
		requests: q.RequestsPerSecond * f, points: q.DatapointsPerSecond * f, recentPoints: q.RecentDatapointsPerSecond * f,
		now: time.Now, sleep: sleepCtx,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// rate is the paced datapoint rate for a window starting at start.
func (p *Pacer) rate(start time.Time) float64 {
	if start.After(p.now().Add(-recentWindow)) {
		return p.recentPoints
	}
	return p.points
}

// Wait blocks until one request returning up to points datapoints, for a
// window starting at start, may be sent, and books it.
func (p *Pacer) Wait(ctx context.Context, start time.Time, points int) error {
	if p == nil {
		return ctx.Err()
	}
	rate := p.rate(start)
	p.mu.Lock()
	now := p.now()
	at := now
	if p.requests > 0 && p.nextRequest.After(at) {
		at = p.nextRequest
	}
	if rate > 0 && p.nextPoints.After(at) {
		at = p.nextPoints
	}
	if p.requests > 0 {
		p.nextRequest = at.Add(seconds(1 / p.requests))
	}
	if rate > 0 {
		p.nextPoints = at.Add(seconds(float64(points) / rate))
	}
	p.mu.Unlock()
	return p.sleep(ctx, at.Sub(now))
}

// Estimate is how long reading points datapoints in requests requests
// takes at the paced rates, from now on (after what is booked already),
// for a window starting at start. Zero when not paced.
func (p *Pacer) Estimate(start time.Time, requests, points int) time.Duration {
	if p == nil {
		return 0
	}
	return p.booked() + p.cost(start, requests, points)
}

// cost is how long requests requests returning points datapoints take at
// the paced rates.
func (p *Pacer) cost(start time.Time, requests, points int) time.Duration {
	rate := p.rate(start)
	var d time.Duration
	if p.requests > 0 {
		d = seconds(float64(requests) / p.requests)
	}
	if rate > 0 {
		d = max(d, seconds(float64(points)/rate))
	}
	return d
}

// booked is how long the requests already booked keep the rates busy.
func (p *Pacer) booked() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(0, later(p.nextRequest, p.nextPoints).Sub(p.now()))
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
