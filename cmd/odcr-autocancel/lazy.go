package main

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
)

// The clients a run needs only now and then (Price List, Organizations,
// SNS, KMS) are made on their first call (awsapi.Lazy), not at start: many
// runs never call them (a preview without prices, a run with nothing to
// tell or to mark).

type lazySNS struct{ awsapi.Lazy[*sns.Client] }

func (l *lazySNS) Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error) {
	return l.Get().Publish(ctx, in, opts...)
}

type lazyPricing struct{ awsapi.Lazy[*pricing.Client] }

func (l *lazyPricing) GetProducts(ctx context.Context, in *pricing.GetProductsInput, opts ...func(*pricing.Options)) (*pricing.GetProductsOutput, error) {
	return l.Get().GetProducts(ctx, in, opts...)
}

type lazyOrganizations struct {
	awsapi.Lazy[*organizations.Client]
}

func (l *lazyOrganizations) ListAccounts(ctx context.Context, in *organizations.ListAccountsInput, opts ...func(*organizations.Options)) (*organizations.ListAccountsOutput, error) {
	return l.Get().ListAccounts(ctx, in, opts...)
}

func (l *lazyOrganizations) ListAccountsForParent(ctx context.Context, in *organizations.ListAccountsForParentInput, opts ...func(*organizations.Options)) (*organizations.ListAccountsForParentOutput, error) {
	return l.Get().ListAccountsForParent(ctx, in, opts...)
}

func (l *lazyOrganizations) ListChildren(ctx context.Context, in *organizations.ListChildrenInput, opts ...func(*organizations.Options)) (*organizations.ListChildrenOutput, error) {
	return l.Get().ListChildren(ctx, in, opts...)
}

type lazyKMS struct{ awsapi.Lazy[*kms.Client] }

func (l *lazyKMS) GenerateMac(ctx context.Context, in *kms.GenerateMacInput, opts ...func(*kms.Options)) (*kms.GenerateMacOutput, error) {
	return l.Get().GenerateMac(ctx, in, opts...)
}

func (l *lazyKMS) VerifyMac(ctx context.Context, in *kms.VerifyMacInput, opts ...func(*kms.Options)) (*kms.VerifyMacOutput, error) {
	return l.Get().VerifyMac(ctx, in, opts...)
}
