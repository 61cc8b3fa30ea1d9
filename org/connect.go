package org

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ram"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
)

// AssumeRoleConnector reaches targets with the SDK: the function's own
// configuration in another region, or the member role's session in another
// account.
type AssumeRoleConnector struct {
	// Config is the function's own configuration (credentials, region,
	// retryer); each target's clients are made from a copy.
	Config aws.Config
	// STS assumes the member roles. It calls STS in the function's own
	// region, which is always enabled, and whose session tokens are valid
	// in every region (a global-endpoint token is not valid in an opt-in
	// region).
	STS stscreds.AssumeRoleAPIClient
}

// NewAssumeRoleConnector returns a connector on cfg.
func NewAssumeRoleConnector(cfg aws.Config) *AssumeRoleConnector {
	return &AssumeRoleConnector{Config: cfg, STS: sts.NewFromConfig(cfg)}
}

// Connect returns the clients of a's region, with the member role's
// credentials when a names one. The role is assumed here, before any call
// to the target, so that a role that is missing or refuses the function is
// known as such. The SDK's credentials cache renews the session if the run
// outlives it.
func (c *AssumeRoleConnector) Connect(ctx context.Context, a Access) (awsapi.Clients, error) {
	cfg := c.Config.Copy()
	cfg.Region = a.Region
	if a.RoleARN != "" {
		provider := stscreds.NewAssumeRoleProvider(c.STS, a.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = a.SessionName
			o.Duration = a.Duration
		})
		cfg.Credentials = aws.NewCredentialsCache(provider)
		if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
			return awsapi.Clients{}, fmt.Errorf("assume role %s: %w", a.RoleARN, err)
		}
	}
	e := ec2.NewFromConfig(cfg)
	return awsapi.Clients{
		EC2:        e,
		CloudWatch: cloudwatch.NewFromConfig(cfg),
		RAM:        ram.NewFromConfig(cfg),
		// Made when first needed: most targets have nothing to cancel.
		AutoScaling: awsapi.NewLazyAutoScaling(func() awsapi.AutoScaling { return autoscaling.NewFromConfig(cfg) }),
		Regions:     e,
	}, nil
}
