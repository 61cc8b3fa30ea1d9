package fakeaws

import (
	"testing"
	"time"
)

// TestRateWindow: the window holds what happened in the last second, keeps
// its total equal to the sum of its entries through pruning and compaction,
// and stays as long as the entries of one second.
func TestRateWindow(t *testing.T) {
	var w rateWindow
	base := time.Now()
	// 1,000 answers of 100,000 datapoints, one every 10ms over 10 seconds.
	for i := range 1000 {
		now := base.Add(time.Duration(i) * 10 * time.Millisecond)
		w.prune(now)
		w.add(now, 100_000)
		// Entries at or before now-1s are gone: the last 100 remain.
		if want := min(i+1, 100); w.total != want*100_000 || len(w.entries)-w.head != want {
			t.Fatalf("at %d: total %d over %d entries, want %d entries", i, w.total, len(w.entries)-w.head, want)
		}
		if len(w.entries) > 256 {
			t.Fatalf("at %d: %d entries kept for %d live ones", i, len(w.entries), len(w.entries)-w.head)
		}
	}
	w.add(base, 0) // nothing to count
	w.prune(base.Add(20 * time.Second))
	if w.total != 0 || len(w.entries) != 0 || w.head != 0 {
		t.Fatalf("after 10 quiet seconds: total %d, %d entries, head %d", w.total, len(w.entries), w.head)
	}
}
