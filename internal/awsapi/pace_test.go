package awsapi

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// Reservations are spaced by the interval, whoever asks, and a schedule
// that fell behind starts again from now, not from the past (no burst).
func TestPaceSpacesReservations(t *testing.T) {
	var p Pace
	every := 100 * time.Millisecond
	var (
		mu  sync.Mutex
		got []time.Time
		wg  sync.WaitGroup
	)
	for range 10 {
		wg.Go(func() {
			at := p.Reserve(every)
			mu.Lock()
			got = append(got, at)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortFunc(got, time.Time.Compare)
	for i := 1; i < len(got); i++ {
		if gap := got[i].Sub(got[i-1]); gap != every {
			t.Errorf("reservation %d starts %v after the one before, want %v", i, gap, every)
		}
	}
	if span := got[len(got)-1].Sub(got[0]); span != 9*every {
		t.Errorf("10 reservations span %v, want %v", span, 9*every)
	}

	// After a pause longer than the schedule, the next start is now.
	var q Pace
	q.Reserve(every)
	time.Sleep(2 * every)
	if at := q.Reserve(every); time.Until(at) > 0 || time.Since(at) > every {
		t.Errorf("after a pause the next start is %v from now, want now", time.Until(at))
	}
}

// Wait returns the context's error when it ends before the slot.
func TestPaceWaitEndsWithItsContext(t *testing.T) {
	var p Pace
	p.Reserve(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := p.Wait(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait = %v, want the context's deadline", err)
	}
	if err := SleepUntil(context.Background(), time.Now().Add(-time.Second)); err != nil {
		t.Errorf("SleepUntil a past time = %v, want nil", err)
	}
}
