// Package awsapi holds what the run (package handler) and the organization
// layer (package org) both need of AWS: the small client interfaces of one
// target (Clients), the count of the requests a run makes (Calls), the
// AWS error codes the function acts on (ErrorCode), the retryer's defaults
// (RetryCounter), and the schedule that keeps a run under a rate quota
// (Pace). It is a leaf: it imports the SDK and nothing of this module.
package awsapi

import (
	"context"
	"errors"
	"maps"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ram"
	"github.com/aws/smithy-go"
)

// EC2 is the part of EC2 a run uses: four reads, the cancel, the shrink
// and the marks.
type EC2 interface {
	ec2.DescribeCapacityReservationsAPIClient
	ec2.DescribeInstancesAPIClient
	ec2.GetGroupsForCapacityReservationAPIClient
	ec2.DescribeLaunchTemplateVersionsAPIClient
	CancelCapacityReservation(context.Context, *ec2.CancelCapacityReservationInput, ...func(*ec2.Options)) (*ec2.CancelCapacityReservationOutput, error)
	ModifyCapacityReservation(context.Context, *ec2.ModifyCapacityReservationInput, ...func(*ec2.Options)) (*ec2.ModifyCapacityReservationOutput, error)
	CreateTags(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	DeleteTags(context.Context, *ec2.DeleteTagsInput, ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error)
}

// CloudWatch is the part of CloudWatch a run uses.
type CloudWatch interface {
	cloudwatch.GetMetricDataAPIClient
}

// RAM is the part of AWS RAM a run uses: one read.
type RAM interface {
	ram.ListResourcesAPIClient
}

// AutoScaling is the part of Auto Scaling a run uses: one read.
type AutoScaling interface {
	autoscaling.DescribeAutoScalingGroupsAPIClient
}

// Lazy makes a client once, on its first use: a client a run needs only
// now and then (Auto Scaling, and in main SNS, Price List, Organizations,
// KMS) made at start would only lengthen every cold start.
type Lazy[T any] struct{ Get func() T }

// NewLazy returns a Lazy whose Get calls newClient once.
func NewLazy[T any](newClient func() T) Lazy[T] { return Lazy[T]{Get: sync.OnceValue(newClient)} }

// LazyAutoScaling is the Auto Scaling client made on first use: a run
// calls Auto Scaling only when a reservation would be cancelled or shrunk.
type LazyAutoScaling struct{ Lazy[AutoScaling] }

// NewLazyAutoScaling returns a LazyAutoScaling that calls newClient once,
// on the first request.
func NewLazyAutoScaling(newClient func() AutoScaling) *LazyAutoScaling {
	return &LazyAutoScaling{NewLazy(newClient)}
}

// DescribeAutoScalingGroups implements AutoScaling.
func (l *LazyAutoScaling) DescribeAutoScalingGroups(ctx context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, optFns ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
	return l.Get().DescribeAutoScalingGroups(ctx, in, optFns...)
}

// Regions is the EC2 call that lists an account's enabled regions.
type Regions interface {
	DescribeRegions(context.Context, *ec2.DescribeRegionsInput, ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error)
}

var (
	_ EC2        = (*ec2.Client)(nil)
	_ CloudWatch = (*cloudwatch.Client)(nil)
	_ RAM        = (*ram.Client)(nil)
	_ Regions    = (*ec2.Client)(nil)

	_ AutoScaling = (*autoscaling.Client)(nil)
	_ AutoScaling = (*LazyAutoScaling)(nil)
)

// Clients are the clients of one target: an account in a region.
type Clients struct {
	EC2        EC2
	CloudWatch CloudWatch
	RAM        RAM
	// AutoScaling lists the Auto Scaling groups (package dependents); nil
	// keeps every reservation that would be cancelled or shrunk.
	AutoScaling AutoScaling
	// Regions lists the regions enabled for the target's account.
	Regions Regions
}

// AWS error codes the function acts on. Classified by code, never by message.
const (
	CodeDryRunOperation = "DryRunOperation"
	CodeUnauthorized    = "UnauthorizedOperation"
	CodeIncorrectState  = "IncorrectState"
	CodeNotFound        = "InvalidCapacityReservationId.NotFound"
)

// ErrorCode returns the AWS error code of err, or a short description of
// what kind of failure it was when AWS did not answer with one.
func ErrorCode(err error) string {
	var apiErr smithy.APIError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &apiErr):
		return apiErr.ErrorCode()
	case errors.Is(err, context.DeadlineExceeded):
		return "DeadlineExceeded"
	case errors.Is(err, context.Canceled):
		return "Canceled"
	}
	return "ClientError"
}

// RefusesCredentials tells whether err is AWS refusing the credentials or
// the caller (an account that has not enabled the region answers
// AuthFailure; a role without the permission, UnauthorizedOperation or
// AccessDenied), rather than failing the request.
func RefusesCredentials(err error) bool {
	switch ErrorCode(err) {
	case "AuthFailure", CodeUnauthorized, "OptInRequired", "InvalidClientTokenId", "UnrecognizedClientException",
		"AccessDenied", "AccessDeniedException":
		return true
	}
	return false
}

// Calls counts API requests per operation, for the report. Safe for
// concurrent use (metric batches run in parallel); the zero value is ready.
type Calls struct {
	mu     sync.Mutex
	counts map[string]int
}

// Add counts one request of op.
func (c *Calls) Add(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = make(map[string]int)
	}
	c.counts[op]++
}

// Snapshot returns the counts so far.
func (c *Calls) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	maps.Copy(out, c.counts)
	return out
}
