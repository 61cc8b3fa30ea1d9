package main

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strconv"
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
		acct.SetEC2RequestQuotas(fakeaws.DefaultEC2RequestQuotas()) // the cancel: 50, refilled at 5/s
		srv := httptest.NewServer(acct.Handler())

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
		fmt.Fprintf(w, "%-10s  %9d  %6d  %17d  %11d  %s\n", mode, len(report.Cancelled), len(report.Failures), acct.EC2Throttled(fakeaws.OpCancelCapacityReservation), report.Retries, wall.Round(100*time.Millisecond))
	}
	return nil
}
