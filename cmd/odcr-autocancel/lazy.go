package main

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// The clients a run needs only now and then (Price List, Organizations,
// SNS, KMS) are made on their first call, not at start: each costs part of
// a millisecond of every cold start, and many runs never call them (a
// preview without prices, a run with nothing to tell or to mark).

// lazy makes a client once, on the first get.
type lazy[T any] struct{ get func() T }

func newLazy[T any](make func() T) lazy[T] { return lazy[T]{get: sync.OnceValue(make)} }

type lazySNS struct{ lazy[*sns.Client] }

func (l *lazySNS) Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error) {
	return l.get().Publish(ctx, in, opts...)
}

type lazyPricing struct{ lazy[*pricing.Client] }

func (l *lazyPricing) GetProducts(ctx context.Context, in *pricing.GetProductsInput, opts ...func(*pricing.Options)) (*pricing.GetProductsOutput, error) {
	return l.get().GetProducts(ctx, in, opts...)
}

type lazyOrganizations struct{ lazy[*organizations.Client] }

func (l *lazyOrganizations) ListAccounts(ctx context.Context, in *organizations.ListAccountsInput, opts ...func(*organizations.Options)) (*organizations.ListAccountsOutput, error) {
	return l.get().ListAccounts(ctx, in, opts...)
}

func (l *lazyOrganizations) ListAccountsForParent(ctx context.Context, in *organizations.ListAccountsForParentInput, opts ...func(*organizations.Options)) (*organizations.ListAccountsForParentOutput, error) {
	return l.get().ListAccountsForParent(ctx, in, opts...)
}

func (l *lazyOrganizations) ListChildren(ctx context.Context, in *organizations.ListChildrenInput, opts ...func(*organizations.Options)) (*organizations.ListChildrenOutput, error) {
	return l.get().ListChildren(ctx, in, opts...)
}

type lazyKMS struct{ lazy[*kms.Client] }

func (l *lazyKMS) GenerateMac(ctx context.Context, in *kms.GenerateMacInput, opts ...func(*kms.Options)) (*kms.GenerateMacOutput, error) {
	return l.get().GenerateMac(ctx, in, opts...)
}

func (l *lazyKMS) VerifyMac(ctx context.Context, in *kms.VerifyMacInput, opts ...func(*kms.Options)) (*kms.VerifyMacOutput, error) {
	return l.get().VerifyMac(ctx, in, opts...)
}
