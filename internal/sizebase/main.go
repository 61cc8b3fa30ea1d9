// Command sizebase is the baseline CI weighs the bootstrap against: a main
// that does nothing but create the SDK clients the function creates and
// make the calls it makes (so that the linker keeps the same SDK code),
// built with the bootstrap's flags. What the bootstrap weighs over it is
// the function's own code and its other dependencies (aws-lambda-go, zap);
// .ci/run allows at most 5 % over it. Keep its clients and calls the
// function's (cmd/odcr-autocancel, handler, org, dependents, marks, price,
// notify, utilization): a call the function adds and this misses shows as
// the bootstrap's own weight.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/ram"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"go.uber.org/zap"
)

func main() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		panic(err)
	}
	e := ec2.NewFromConfig(cfg)
	calls := []func() error{
		func() error { _, err := e.DescribeCapacityReservations(ctx, nil); return err },
		func() error { _, err := e.DescribeInstances(ctx, nil); return err },
		func() error { _, err := e.GetGroupsForCapacityReservation(ctx, nil); return err },
		func() error { _, err := e.CancelCapacityReservation(ctx, nil); return err },
		func() error { _, err := e.ModifyCapacityReservation(ctx, nil); return err },
		func() error { _, err := e.CreateTags(ctx, nil); return err },
		func() error { _, err := e.DeleteTags(ctx, nil); return err },
		func() error { _, err := e.DescribeRegions(ctx, nil); return err },
		func() error { _, err := e.DescribeLaunchTemplateVersions(ctx, nil); return err },
		func() error { _, err := cloudwatch.NewFromConfig(cfg).GetMetricData(ctx, nil); return err },
		func() error { _, err := ram.NewFromConfig(cfg).ListResources(ctx, nil); return err },
		func() error { _, err := sns.NewFromConfig(cfg).Publish(ctx, nil); return err },
		func() error { _, err := pricing.NewFromConfig(cfg).GetProducts(ctx, nil); return err },
		func() error {
			o := organizations.NewFromConfig(cfg)
			if _, err := o.ListAccounts(ctx, nil); err != nil {
				return err
			}
			if _, err := o.ListAccountsForParent(ctx, nil); err != nil {
				return err
			}
			_, err := o.ListChildren(ctx, nil)
			return err
		},
		func() error {
			s := sts.NewFromConfig(cfg)
			if _, err := s.AssumeRole(ctx, nil); err != nil {
				return err
			}
			_, err := s.GetCallerIdentity(ctx, nil)
			return err
		},
		func() error {
			k := kms.NewFromConfig(cfg)
			if _, err := k.GenerateMac(ctx, nil); err != nil {
				return err
			}
			_, err := k.VerifyMac(ctx, nil)
			return err
		},
		func() error { _, err := autoscaling.NewFromConfig(cfg).DescribeAutoScalingGroups(ctx, nil); return err },
	}
	for _, call := range calls {
		_ = call()
	}
	// The runtime libraries every function of this shape has: the Lambda
	// runtime client and the logger.
	logger, _ := zap.NewProduction()
	lambda.Start(func(context.Context, []byte) ([]byte, error) {
		logger.Info("invoked")
		return nil, nil
	})
}
