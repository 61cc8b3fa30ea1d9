package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
)

// tokenBucket is EC2's request rate limiting for one bucket: capacity
// tokens, refilled at rate per second, one token a request.
type tokenBucket struct {
	mu       sync.Mutex
	capacity float64
	rate     float64
	tokens   float64
	last     time.Time
}

func (b *tokenBucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(b.capacity, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// throttleCancels puts EC2's mutating bucket in front of the fake account:
// CancelCapacityReservation requests beyond it get RequestLimitExceeded, as
// EC2 answers them.
func throttleCancels(next http.Handler, bucket *tokenBucket, throttled *int) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		if form.Get("Action") == fakeaws.OpCancelCapacityReservation && !bucket.take(time.Now()) {
			mu.Lock()
			*throttled++
			mu.Unlock()
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>bench</RequestID></Response>`)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// measurePacing cancels n idle reservations (2n mutating calls: DryRun and
// real) through the function, once with each SDK retry mode, and reports
// how many made it.
func measurePacing(w io.Writer, n int) error {
	fmt.Fprintf(w, "%d idle reservations, budget %d: %d mutating calls against a bucket of 50 refilled at 5/s\n\n", n, n, 2*n)
	fmt.Fprintln(w, "retry mode  cancelled  failed  throttled answers  SDK retries  wall")
	for _, mode := range []aws.RetryMode{aws.RetryModeStandard, aws.RetryModeAdaptive} {
		acct := fakeaws.New(account)
		now := time.Now()
		idle := fakeaws.RegularSeries{From: now.Add(-lookbackHours*time.Hour - time.Hour), To: now, Step: 5 * time.Minute, Value: 0}
		for i := range n {
			id := fmt.Sprintf("cr-%017x", i+1)
			acct.AddReservation(fakeaws.Reservation{ID: id, InstanceType: "m5.large", AvailabilityZone: "us-east-1a",
				TotalInstanceCount: 1, AvailableInstanceCount: 1, CreateDate: now.Add(-72 * time.Hour)})
			acct.SetUsedInstancesRegular(id, idle)
		}
		var throttled int
		bucket := &tokenBucket{capacity: 50, rate: 5, tokens: 50, last: time.Now()}
		srv := httptest.NewServer(throttleCancels(acct.Handler(), bucket, &throttled))

		cfg := aws.Config{
			Region:      "us-east-1",
			Credentials: credentials.NewStaticCredentialsProvider("AKIDBENCH", "SECRET", ""),
			RetryMode:   mode,
		}
		retries := &awsapi.RetryCounter{}
		retries.Instrument(&cfg)
		settings, err := handler.LoadSettings(func(k string) (string, bool) {
			v, ok := map[string]string{"DRY_RUN": "false", "GRACE_HOURS": "0", "LOOKBACK_HOURS": strconv.Itoa(lookbackHours), "MAX_CANCELLATIONS_PER_RUN": strconv.Itoa(n)}[k]
			return v, ok
		})
		if err != nil {
			srv.Close()
			return err
		}
		h := &handler.Handler{
			EC2:           ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(srv.URL) }),
			CloudWatch:    cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(srv.URL) }),
			Settings:      settings,
			Logger:        zap.NewNop(),
			Now:           time.Now,
			CallerAccount: func(context.Context) (string, error) { return account, nil },
			Retries:       retries,
		}
		start := time.Now()
		report, _ := h.Run(context.Background(), []byte(`{}`))
		wall := time.Since(start)
		srv.Close()
		if report == nil {
			return fmt.Errorf("pacing run with %s retries returned no report", mode)
		}
		fmt.Fprintf(w, "%-10s  %9d  %6d  %17d  %11d  %s\n", mode, len(report.Cancelled), len(report.Failures), throttled, report.Retries, wall.Round(100*time.Millisecond))
	}
	return nil
}
