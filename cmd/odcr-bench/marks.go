package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ram"
	"go.uber.org/zap"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// measureMarks measures signed marks at scale: n idle reservations, a live
// run with the deployed grace (72 hours) that marks every one it can (a
// GenerateMac and a CreateTags each) before its deadline, then a run 73
// hours later that checks every mark (a VerifyMac each), marks the rest
// and cancels the budget's worth. The fake adds latency to every request;
// with quotas it enforces KMS's lowest regional request quota (5,500 a
// second) and EC2's request token buckets (CreateTags 100, refilled at 10
// a second). Each run has timeout, as an invocation of the function has.
func measureMarks(w io.Writer, n, budget int, latency time.Duration, quotas bool, timeout time.Duration) error {
	acct := fakeaws.New(account)
	start := time.Now().Truncate(time.Hour)
	clock := start
	acct.SetClock(func() time.Time { return clock })
	idle := fakeaws.RegularSeries{From: start.Add(-30 * 24 * time.Hour), To: start.Add(7 * 24 * time.Hour), Step: 5 * time.Minute, Value: 0}
	for i := range n {
		id := fmt.Sprintf("cr-%017x", i+1)
		acct.AddReservation(fakeaws.Reservation{ID: id, InstanceType: "m5.large", AvailabilityZone: "us-east-1a",
			TotalInstanceCount: 1, AvailableInstanceCount: 1, CreateDate: start.Add(-30 * 24 * time.Hour)})
		acct.SetUsedInstancesRegular(id, idle)
	}
	acct.SetMetricPageSize(0)
	if quotas {
		acct.SetKMSRequestQuota(5500)
		acct.SetEC2RequestQuotas(fakeaws.DefaultEC2RequestQuotas())
	}
	_, key := acct.AddMacKey()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		time.Sleep(latency)
		acct.Handler().ServeHTTP(rw, r)
	}))
	defer srv.Close()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDBENCH", "SECRET", "")}
	retries := &awsapi.RetryCounter{}
	retries.Instrument(&cfg) // the function's retry defaults (12 attempts)
	url := aws.String(srv.URL)
	settings, err := handler.LoadSettings(func(k string) (string, bool) {
		v, ok := map[string]string{
			"DRY_RUN": "false", "GRACE_HOURS": "72", "LOOKBACK_HOURS": strconv.Itoa(lookbackHours),
			"MAX_CANCELLATIONS_PER_RUN": strconv.Itoa(budget), "MARK_KEY_ID": key, "PRICING": "off",
		}[k]
		return v, ok
	})
	if err != nil {
		return err
	}
	h := &handler.Handler{
		EC2:           ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = url }),
		CloudWatch:    cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.BaseEndpoint = url }),
		RAM:           ram.NewFromConfig(cfg, func(o *ram.Options) { o.BaseEndpoint = url }),
		KMS:           kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = url }),
		AutoScaling:   autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.BaseEndpoint = url }),
		Settings:      settings,
		Logger:        zap.NewNop(),
		Now:           func() time.Time { return clock },
		CallerAccount: func(context.Context) (string, error) { return account, nil },
		Retries:       retries,
	}
	limits := "no rate quotas"
	if quotas {
		limits = "KMS quota 5,500 requests/s, EC2's request buckets (CreateTags 100 refilled at 10/s)"
	}
	fmt.Fprintf(w, "%d idle reservations, %s per request, grace 72 h, budget %d, %s, timeout %s\n\n", n, latency, budget, limits, timeout)
	fmt.Fprintln(w, "run                       marked  checked  cancelled  KMS throttled  CreateTags throttled  wall     calls")
	for _, step := range []struct {
		name  string
		after time.Duration
	}{{"day 0: mark every one", 0}, {"day 3: check, cancel", 73 * time.Hour}} {
		clock = start.Add(step.after)
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		rep, err := h.Run(ctx, []byte(`{}`))
		cancel()
		wall := time.Since(t0)
		if rep == nil {
			return fmt.Errorf("%s: %w", step.name, err)
		}
		if len(rep.Marked)+len(rep.Cancelled) == 0 {
			fmt.Fprintln(w, rep.Counts.Reasons, rep.Problems)
		}
		fmt.Fprintf(w, "%-24s  %6d  %7d  %9d  %13d  %20d  %-7s  %s\n", step.name, len(rep.Marked), rep.APICalls["VerifyMac"], len(rep.Cancelled),
			acct.KMSThrottled(), acct.EC2Throttled(fakeaws.OpCreateTags), wall.Round(100*time.Millisecond), callsLine(rep))
		for _, p := range rep.Problems {
			fmt.Fprintln(w, "  problem:", p)
		}
		if len(rep.TagFailures) > 0 {
			fmt.Fprintf(w, "  %d tag failures, the first: %s\n", len(rep.TagFailures), rep.TagFailures[0].Message)
		}
	}
	return nil
}

func callsLine(rep *report.Report) string {
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(rep.APICalls)) {
		parts = append(parts, fmt.Sprintf("%s %d", op, rep.APICalls[op]))
	}
	return strings.Join(parts, ", ")
}
