package handler_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/marks"
	"github.com/odcr-autocancel/odcr-autocancel/org"
)

// sealedHandler is collectHandler with the key that signs marks: it seals
// what it returns to the state machine and checks what comes back.
func sealedHandler(t *testing.T, pub *fakePublisher) (*handler.Handler, *memKMS) {
	t.Helper()
	h, _ := collectHandler(t, pub)
	k := &memKMS{}
	h.KMS, h.Settings.MarkKeyID = k, testMarkKey
	return h, k
}

// sealed is a summary as a target run returns it: signed with the key.
func sealed(t *testing.T, k *memKMS, summary string) string {
	t.Helper()
	var s org.TargetSummary
	if err := json.Unmarshal([]byte(summary), &s); err != nil {
		t.Fatal(err)
	}
	if err := s.Seal(context.Background(), &marks.Signer{KMS: k, KeyID: testMarkKey}); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// A collect request anyone could write (a forged summary, a summary whose
// counts were changed on the way, forged totals) is refused before
// anything is counted or published; the state machine's own pages, sealed
// by the function, go through.
func TestForgedCollectIsRefused(t *testing.T) {
	pub := &fakePublisher{}
	h, k := sealedHandler(t, pub)
	genuine := sealed(t, k, summaryJSON("111111111111", "us-east-1", false, 2, 3, 100))
	tampered := strings.Replace(genuine, `"cancelled":2`, `"cancelled":200`, 1)
	forgedTotals := &org.Totals{Targets: 7, TargetCounts: org.TargetCounts{Cancelled: 999}, Failures: []org.TargetFailure{}}

	for name, tc := range map[string]struct {
		results []string
		totals  *org.Totals
	}{
		"an unsigned summary":          {results: []string{summaryJSON("111111111111", "us-east-1", false, 2, 3, 100)}},
		"a summary changed on the way": {results: []string{tampered}},
		"forged totals":                {results: []string{genuine}, totals: forgedTotals},
	} {
		_, err := invokeCollect(t, h, tc.results, tc.totals, true)
		var invalid *handler.InvalidEventError
		if !errors.As(err, &invalid) || !errors.Is(err, org.ErrNotSealed) {
			t.Errorf("%s: %v, want an invalid event, not signed by this function", name, err)
		}
	}
	if len(pub.inputs) != 0 {
		t.Fatalf("a forged collect published %d messages", len(pub.inputs))
	}

	// Two genuine pages: the first's totals come back sealed, the second
	// counts both and publishes. The state machine's failure object (no
	// run, no signature) counts as a failed target.
	totals, err := invokeCollect(t, h, []string{genuine}, nil, false)
	if err != nil || totals.Signature == "" {
		t.Fatalf("first page: %+v, %v; want sealed totals", totals, err)
	}
	second := sealed(t, k, summaryJSON("222222222222", "eu-west-1", false, 1, 1, 50))
	totals, err = invokeCollect(t, h, []string{second, failureJSON("333333333333", "us-east-1", "TargetError", "no role")}, totals, true)
	if err != nil || totals.Cancelled != 3 || totals.Failed != 1 || len(pub.inputs) != 1 {
		t.Fatalf("final page: %+v, %v, %d published", totals, err, len(pub.inputs))
	}
}
