package awsapi

import (
	"context"
	"sync"
	"time"
)

// Pace spaces the requests of one rate quota evenly: a virtual-time
// schedule without burst, where each request starts at least a given
// interval after the previous one. The zero value is ready and safe for
// concurrent use; one Pace serves one quota of one account and region.
type Pace struct {
	mu   sync.Mutex
	next time.Time // when the next request may start
}

// Reserve books the next start, every after the previous one (now, if the
// schedule has fallen behind), and returns it. The caller starts its
// request then (SleepUntil), or gives the slot up by not using it.
func (p *Pace) Reserve(every time.Duration) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := time.Now()
	if p.next.After(at) {
		at = p.next
	}
	p.next = at.Add(every)
	return at
}

// Wait books the next start and waits for it, or for ctx to end.
func (p *Pace) Wait(ctx context.Context, every time.Duration) error {
	return SleepUntil(ctx, p.Reserve(every))
}

// SleepUntil waits until at, or returns ctx's error if it ends first.
func SleepUntil(ctx context.Context, at time.Time) error {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
